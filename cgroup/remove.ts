/**
 * Removing a container's cgroup folders when nothing is left in them: what
 * `delete` does for nearly every container, since engines delete stopped
 * ones. Apart from container_cgroup.ts, whose planning, limits and freezer
 * code a delete of a stopped container does not need: Deno's cost grows
 * with the code a process loads (bench/README.md). A busy cgroup is
 * container_cgroup.ts's to empty (kill, thaw, retry).
 *
 * @module
 */
import { errorCode } from "./ops.ts";
import { GCR_FOLDER } from "./version_plan.ts";

/** Refuses folders no record of gcr's would name: relative ones, or ones with "..". */
export function checkCgroupFolders(paths: readonly string[]): void {
  for (const path of paths) {
    if (!path.startsWith("/") || path.split("/").includes("..")) throw new Error(`invalid cgroup folder ${path}`);
  }
}

/** rmdir of a cgroup: "gone" (or was), or "busy" while a process is in it (EBUSY). */
export function rmdirCgroup(dir: string): "gone" | "busy" {
  try {
    Deno.removeSync(dir);
    return "gone";
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "gone";
    // Deno gives EBUSY as a plain Error, only its code says so.
    if (errorCode(error) === "EBUSY") return "busy";
    throw new Error(`rmdir ${dir}: ${errorCode(error)}`, { cause: error });
  }
}

/** Removes folders that may be shared or hold other cgroups: deepest first, and only those now empty. */
export function removeIfEmpty(folders: readonly string[]): void {
  for (const folder of [...folders].sort((a, b) => b.length - a.length)) {
    try {
      Deno.removeSync(folder);
    } catch { /* in use (another container's folder below it), or already gone */ }
  }
}

/** The shared `gcr` folders the container's cgroups are in: removed with the last of them. */
export function gcrParents(paths: readonly string[]): string[] {
  return [...new Set(paths.map((p) => p.slice(0, p.lastIndexOf("/"))))].filter((p) => p.endsWith(`/${GCR_FOLDER}`));
}

/**
 * The container's own cgroup folders among those its record lists: the
 * deepest (the others are the parents gcr made for a cgroupsPath, removed
 * with it when empty).
 */
export function ownCgroupFolders(cgroups: readonly string[]): string[] {
  return cgroups.filter((dir) => !cgroups.some((other) => other !== dir && other.startsWith(dir + "/")));
}

/** A record's cgroup folders split into the container's own and those made for it (see ownCgroupFolders). */
export function recordedCgroup(cgroups: readonly string[]): { own: string[]; created: string[] } {
  const own = ownCgroupFolders(cgroups);
  return { own, created: cgroups.filter((dir) => !own.includes(dir)) };
}

/**
 * Removes the container's cgroup (`own`, one folder per hierarchy) and then
 * the folders made for it (`created`) and the shared ones, when empty.
 * Returns false, having stopped, at the first folder a process is still
 * in: emptying it is ContainerCgroup.remove's (container_cgroup.ts).
 */
export function removeEmptyCgroup(own: readonly string[], created: readonly string[]): boolean {
  checkCgroupFolders([...own, ...created]);
  for (const dir of own) if (rmdirCgroup(dir) === "busy") return false;
  removeIfEmpty([...created, ...gcrParents(own)]);
  return true;
}
