/**
 * Reads of the cgroup file system that the plans and a container's cgroup
 * both make: a file's words, whether a path exists, who owns it. A file
 * that cannot be read counts as absent: cgroups come and go, and the
 * kernel offers some files only with some controllers or options.
 *
 * @module
 */

/** A file's words (cgroup.procs, cgroup.controllers, …), or undefined when it cannot be read. */
export function readWords(path: string): string[] | undefined {
  try {
    return Deno.readTextFileSync(path).trim().split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
}

/** Whether `uid` owns `path`: rootless, gcr may use only a cgroup delegated to the user. */
export function ownedBy(path: string, uid: number): boolean {
  try {
    return Deno.statSync(path).uid === uid;
  } catch {
    return false;
  }
}
