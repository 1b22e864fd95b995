/**
 * The plan for a container's cgroup, before anything is done: the limits
 * checked, the version and hierarchy chosen (v2, the v1 hierarchies, or a
 * hybrid host's v2 one when rootless), the folders and ops from v1.ts or
 * v2.ts. explainContainerCgroup shows it as `--trace` and `explain` do.
 *
 * @example
 * ```ts
 * const plan = planContainerCgroup("0123abcd4567", { pidsLimit: 50 });
 * for (const op of plan.ops) console.log(showCgroupOp(op));
 * ```
 *
 * @module
 */
import { ownedBy } from "./files.ts";
import { CgroupUnavailableError, detectCgroups, type V1Hierarchy, type V2Hierarchy } from "./hierarchies.ts";
import type { ResourceLimits } from "./limits.ts";
import { type CgroupOp, showCgroupOp } from "./ops.ts";
import { v1Plan } from "./v1.ts";
import { v2Plan } from "./v2.ts";
import type { CgroupCaller, CgroupOptions } from "./version_plan.ts";
import { rootlessCgroups } from "../host/rootless.ts";

/** Limits that contradict each other or the kernel's ranges, whatever the cgroup version. */
function _checkLimits(limits: ResourceLimits): void {
  if (limits.cpus !== undefined && (limits.cpuQuotaUs !== undefined || limits.cpuPeriodUs !== undefined)) {
    throw new Error("cpus and a CPU quota or period were both given: one way to say the CPU limit, please");
  }
  const swap = limits.memorySwapBytes;
  if (swap !== undefined && swap !== -1) {
    if (limits.memoryBytes === undefined) {
      throw new Error(`memory+swap limit ${swap}: it needs a memory limit too (swap is what it allows beyond that)`);
    }
    if (swap < limits.memoryBytes) {
      throw new Error(`memory+swap limit ${swap} is below the memory limit ${limits.memoryBytes}`);
    }
  }
  const swappiness = limits.memorySwappiness;
  if (swappiness !== undefined && !(Number.isInteger(swappiness) && swappiness >= 0 && swappiness <= 100)) {
    throw new Error(`memory swappiness ${swappiness}: the range is 0-100`);
  }
  const shares = limits.cpuShares;
  if (shares !== undefined && !(Number.isInteger(shares) && shares >= 2 && shares <= 262144)) {
    throw new Error(`cpu shares ${shares}: the range is 2-262144`);
  }
  for (const [name, list] of [["cpus", limits.cpusetCpus], ["mems", limits.cpusetMems]] as const) {
    if (list !== undefined && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) {
      throw new Error(`cpuset ${name} ${JSON.stringify(list)}: expected a list such as 0-2,4`);
    }
  }
}

/** The caller CgroupOptions describe: `uid` and `rootless`, or this process. */
function _caller(options: CgroupOptions): CgroupCaller {
  const uid = options.uid ?? Deno.uid() ?? 0;
  return { uid, rootless: options.rootless ?? (options.uid !== undefined ? uid !== 0 : rootlessCgroups()) };
}

/** The version and hierarchy a container's cgroup goes into, or why none can. */
function _choose(
  options: CgroupOptions,
  caller: CgroupCaller,
): V2Hierarchy | { version: 1; hierarchies: readonly V1Hierarchy[]; unified?: V2Hierarchy } {
  const host = options.host ?? detectCgroups();
  if (host.version === 2) return host;
  if (options.preferV2) {
    if (!host.unified) throw new CgroupUnavailableError("this host mounts no cgroup v2 hierarchy");
    return host.unified;
  }
  // Rootless on a hybrid host: the v1 hierarchies belong to root, the v2 one may be delegated.
  if (caller.rootless && host.unified && ownedBy(host.unified.dir, caller.uid)) return host.unified;
  if (host.hierarchies.length === 0) throw new CgroupUnavailableError("this host mounts no cgroup hierarchy");
  return host;
}

/** The plan for a container's cgroup: folders and ops, without doing anything. */
export function planContainerCgroup(
  id: string,
  limits: ResourceLimits,
  options: CgroupOptions = {},
): { version: 1 | 2; dirs: string[]; folders: string[]; ops: CgroupOp[] } {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw new Error(`invalid container id for a cgroup: ${id}`);
  _checkLimits(limits);
  const caller = _caller(options);
  const chosen = _choose(options, caller);
  return chosen.version === 2
    ? { version: 2, ...v2Plan(chosen, id, limits, options, caller) }
    : { version: 1, ...v1Plan(chosen.hierarchies, id, limits, options, caller, chosen.unified) };
}

/**
 * The lines `--trace` and `explain` show for a container's cgroup: what gcr
 * creates and writes, then how the first process joins it while it waits at
 * its gate (`<pid>` stands for the child's host pid).
 */
export function explainContainerCgroup(id: string, limits: ResourceLimits, options: CgroupOptions = {}): string[] {
  const plan = planContainerCgroup(id, limits, options);
  const joins = plan.dirs.map((dir) => `write ${dir}/cgroup.procs: <pid>`);
  return [...plan.ops.map(showCgroupOp), ...joins];
}
