/**
 * The containers the host holds: registered (an id and a name claimed under
 * the runtime directory's lock, the data folders made), listed from the
 * runtime and state directories, found by name, id or id prefix, and removed
 * with their cgroups and folders.
 *
 * @module
 */

import { removeTree, resolvePath } from "../host/files.ts";
import { CONTAINER_ID, type ContainerPaths, containerPaths, runtimeDir, runtimeDirIsXdg, stateDir } from "./paths.ts";
import { honoursXdgRuntimeDir } from "../host/rootless.ts";
import { type ContainerRecord, readRecord, writeRecord } from "./records.ts";

/** A container as found in the runtime directory (or only as data left in the state directory). */
export interface FoundContainer {
  id: string;
  paths: ContainerPaths;
  record?: ContainerRecord;
}

/**
 * Every container: those with a runtime folder, then data folders without one
 * (left by a reboot, which empties /run, or by a gcr killed while it made them).
 */
export function listContainers(state = stateDir(), runtime = runtimeDir()): FoundContainer[] {
  const folders = (dir: string) => {
    try {
      return [...Deno.readDirSync(dir)].filter((e) => e.isDirectory && CONTAINER_ID.test(e.name)).map((e) => e.name);
    } catch {
      return [];
    }
  };
  const running = folders(runtime);
  const dataOnly = folders(`${state}/containers`).filter((id) => !running.includes(id));
  return [...running, ...dataOnly].sort().map((id) => {
    const paths = containerPaths(id, state, runtime);
    const record = readRecord(paths);
    return record ? { id, paths, record } : { id, paths };
  });
}

/** The one container `ref` names: a name, a whole id, or an id prefix of at least 3 characters. */
export function findContainer(ref: string, all = listContainers()): FoundContainer {
  const byName = all.filter((c) => c.record?.name === ref);
  if (byName.length === 1) return byName[0]!;
  const exact = all.filter((c) => c.id === ref);
  if (exact.length === 1) return exact[0]!;
  const prefixed = ref.length >= 3 ? all.filter((c) => c.id.startsWith(ref)) : [];
  if (prefixed.length === 1) return prefixed[0]!;
  throw new Error(`${prefixed.length > 1 ? "ambiguous" : "no such"} container ${JSON.stringify(ref)}`);
}

/** Removes what a stopped container left: its cgroups, data folder and runtime folder. */
export async function removeContainer(found: FoundContainer): Promise<void> {
  const mounts = found.record?.hostMounts ?? [];
  // Only a config without a mount namespace has these: libc's module is
  // loaded for it alone, not for every delete (Deno's cost grows with the
  // code a process loads: bench/README.md).
  if (mounts.length) (await import("./host_mounts.ts")).detachHostMounts(mounts);
  for (const cgroup of found.record?.cgroups ?? []) {
    try {
      Deno.removeSync(cgroup);
    } catch { /* gone already, or not ours any more */ }
  }
  removeTree(found.paths.dir);
  removeTree(found.paths.run);
}

/**
 * Makes the runtime directory (mode 0700) and, rootless, checks that it is
 * a folder of this user's and not a symlink: under $XDG_RUNTIME_DIR or
 * /tmp, a link planted there would send the records, FIFOs and lock
 * elsewhere. The default folder under $XDG_RUNTIME_DIR gets the sticky bit,
 * as runc gives its own, so that the session's cleaner leaves it alone.
 */
function ensureRuntimeDir(runtime: string): void {
  Deno.mkdirSync(runtime, { recursive: true, mode: 0o700 });
  if (!honoursXdgRuntimeDir()) return;
  const info = Deno.lstatSync(runtime);
  if (info.isSymlink || !info.isDirectory || info.uid !== Deno.uid()) {
    const what = info.isSymlink ? "a symlink" : !info.isDirectory ? "not a folder" : `owned by uid ${info.uid}`;
    throw new Error(
      `refusing to keep containers' state in ${runtime}: it is ${what}, not a folder of uid ${Deno.uid()}`,
    );
  }
  if (runtimeDirIsXdg() && resolvePath(runtime) === runtimeDir() && ((info.mode ?? 0) & 0o7777) !== 0o1700) {
    Deno.chmodSync(runtime, 0o1700);
  }
}

/**
 * Runs `fn` holding the runtime directory's lock: names are checked and
 * claimed under it, so two gcr starting with the same --name cannot both win.
 * The lock is the directory's own (flock works on a folder), so that the
 * directory holds containers only and is empty once they are deleted, as
 * runc's --root is: engines give each runtime a root of its own and check it.
 */
export function withRuntimeLock<T>(fn: () => T, runtime = runtimeDir()): T {
  ensureRuntimeDir(runtime);
  const lock = Deno.openSync(runtime, { read: true });
  try {
    lock.lockSync(true);
    return fn();
  } finally {
    lock.close();
  }
}

/**
 * Claims the runtime folder (and the name) and writes the first record. Fails
 * when the id or the name is taken, leaving nothing behind.
 */
export function registerContainer(paths: ContainerPaths, record: ContainerRecord): void {
  const claim = () => {
    try {
      Deno.mkdirSync(paths.run, { mode: 0o700 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) throw new Error(`container ${record.id} already exists`);
      throw error;
    }
    writeRecord(paths, record, true);
  };
  // An id is claimed by the mkdir alone; only a name, checked against the
  // other records, needs the lock (every OCI create has none). The folder
  // is checked either way: rootless, a symlink planted there is refused.
  const runtime = paths.run.slice(0, paths.run.lastIndexOf("/"));
  if (record.name === undefined) {
    ensureRuntimeDir(runtime);
    return claim();
  }
  withRuntimeLock(() => {
    const holder = listContainers().find((c) => c.record?.name === record.name);
    if (holder) {
      throw new Error(`the name ${JSON.stringify(record.name)} is taken by container ${holder.id} (gcr rm it first)`);
    }
    claim();
  }, runtime);
}

/**
 * Makes the container's data folders (mode 0700: what the container wrote is
 * its own) and the mount points the image lacks (`missing`, as
 * checkMountPoints found them), in `upper`, never in the image; and
 * registers the container.
 */
export function createContainerState(paths: ContainerPaths, record: ContainerRecord, missing: readonly string[]): void {
  registerContainer(paths, record);
  try {
    Deno.mkdirSync(paths.dir.slice(0, paths.dir.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    Deno.mkdirSync(paths.dir, { mode: 0o700 });
    for (const dir of [paths.upper, paths.work, paths.merged]) Deno.mkdirSync(dir, { mode: 0o755 });
    for (const name of missing) Deno.mkdirSync(`${paths.upper}/${name}`, { mode: 0o755 });
  } catch (error) {
    removeTree(paths.run);
    throw error;
  }
}

/** The container `ref` names, with its record (a folder without one is not a container to act on). */
export function recorded(ref: string): FoundContainer & { record: ContainerRecord } {
  const found = findContainer(ref);
  if (!found.record) throw new Error(`container ${found.id} has no readable record (gcr prune removes it)`);
  return found as FoundContainer & { record: ContainerRecord };
}
