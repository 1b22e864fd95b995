/**
 * A speed trick of the runner's: primeMigration moves gcr into the cgroup it
 * is already in while gcr builds the chain, which takes the kernel's cgroup
 * migration lock early, so that moving the child into its container's
 * cgroup after the clone does not wait for an RCU grace period.
 * ownCgroupProcs finds gcr's own cgroup.procs beside a container's.
 *
 * @example
 * ```ts
 * const prime = primeMigration(`${cgroup.paths[0]}/cgroup.procs`); // before the chain is built
 * // … build the chain, clone …
 * await prime;
 * ```
 *
 * @module
 */
import { O } from "../ffi/constants.ts";
import { openFd } from "../ffi/fds.ts";
import { libc } from "../ffi/libc.ts";
import { type CgroupHost, detectCgroups } from "./hierarchies.ts";

/**
 * gcr's own cgroup.procs in the hierarchy that holds `procsFile` (a
 * container's), or undefined when gcr's cgroup there is not visible.
 */
export function ownCgroupProcs(procsFile: string, host: CgroupHost = detectCgroups()): string | undefined {
  const inside = (mount: string) => procsFile.startsWith(`${mount}/`);
  if (host.version === 2) return inside(host.mount) ? `${host.dir}/cgroup.procs` : undefined;
  const hierarchy = [...host.hierarchies, ...(host.unified ? [host.unified] : [])].find((h) => inside(h.mount));
  return hierarchy ? `${hierarchy.dir}/cgroup.procs` : undefined;
}

/**
 * Starts moving gcr to the cgroup it is already in, which moves nothing but
 * takes the kernel's migration lock (cgroup_threadgroup_rwsem) as a move
 * into `procsFile`'s cgroup would. A percpu rwsem's writer waits for an RCU
 * grace period unless another writer left it within about one (rcu_sync),
 * so the first move of a burst waits 5-27 ms here and the next ones ~0.2 ms.
 * Started while gcr builds the chain, the wait passes meanwhile instead of
 * after the clone (cgroup v2's `favordynmods` mount option would remove it,
 * at a cost to every fork and exit: the host's choice, not gcr's).
 * Best effort: a move gcr may not make (rootless) only loses the head start.
 */
export function primeMigration(procsFile: string): Promise<void> {
  let fd: number;
  try {
    const own = ownCgroupProcs(procsFile);
    if (!own) return Promise.resolve();
    fd = openFd(own, O.WRONLY);
  } catch {
    return Promise.resolve();
  }
  // One libc write on a thread of Deno's, which starts at once. (Deno's own
  // writeTextFile would do, but its first use costs ~4 ms of start-up.)
  const pid = new TextEncoder().encode(String(Deno.pid));
  return libc().write_later(fd, pid, BigInt(pid.length)).then(() => {}, () => {}).finally(() => libc().close(fd));
}
