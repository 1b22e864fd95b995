/**
 * A container's cgroup on cgroup v2: one folder under the nearest cgroup
 * that may hand controllers to its children, the controllers enabled on
 * the way down (cgroup.subtree_control), and the limits in v2's files
 * (memory.max, memory.swap.max, cpu.max, cpu.weight, pids.max, …).
 *
 * @module
 */
import { ownedBy, readWords } from "./files.ts";
import { CgroupUnavailableError, type V2Hierarchy } from "./hierarchies.ts";
import type { ResourceLimits } from "./limits.ts";
import type { CgroupOp } from "./ops.ts";
import {
  type CgroupCaller,
  type CgroupOptions,
  controllersTouched,
  CPU_PERIOD_US,
  cpuQuotaUs,
  GCR_FOLDER,
  nearestExisting,
  placement,
  type VersionPlan,
} from "./version_plan.ts";

/** The v2 controllers a set of limits needs. */
function _v2Controllers(limits: ResourceLimits): string[] {
  const touches = controllersTouched(limits);
  return (["memory", "cpu", "cpuset", "pids"] as const).filter((c) => touches[c]);
}

/**
 * The v2 controllers for what `options.controllers` names in v1 terms:
 * cpuacct is part of cpu on v2; the device filter (eBPF) and the freezer
 * (cgroup.freeze) are core features there, not controllers.
 */
function _v2Requested(controllers: readonly string[]): string[] {
  return controllers.flatMap((c) => c === "cpuacct" ? ["cpu"] : c === "devices" || c === "freezer" ? [] : [c]);
}

function _hasProcesses(dir: string): boolean {
  return (readWords(`${dir}/cgroup.procs`) ?? []).length > 0;
}

/**
 * The v2 cgroup under which gcr puts its folder. The "no internal
 * processes" rule lets a cgroup other than the root hand controllers to its
 * children only while it holds no processes itself, and gcr's own cgroup
 * holds gcr: so walk up from the caller's cgroup to the first that is the
 * hierarchy's root, holds no processes, or already hands out the controllers.
 * Rootless, each cgroup on the way must be delegated (owned by the caller);
 * a process may move only between cgroups under one whose cgroup.procs it
 * may write, which the walk also ensures.
 */
function _v2Base(host: V2Hierarchy, needed: readonly string[], caller: CgroupCaller): string {
  const { uid, rootless } = caller;
  const missing = (dir: string) => needed.filter((c) => !(readWords(`${dir}/cgroup.controllers`) ?? []).includes(c));
  const reasons: string[] = [];
  for (let dir = host.dir;; dir = dir.slice(0, dir.lastIndexOf("/"))) {
    if (rootless && !["", "/cgroup.procs", "/cgroup.subtree_control"].every((f) => ownedBy(dir + f, uid))) {
      reasons.push(`${dir} is not delegated to uid ${uid} (it and its cgroup.procs must be owned by the user)`);
      break;
    }
    const enabled = readWords(`${dir}/cgroup.subtree_control`) ?? [];
    if (dir === host.mount || !_hasProcesses(dir) || needed.every((c) => enabled.includes(c))) {
      const lacking = missing(dir);
      if (lacking.length === 0) return dir;
      reasons.push(`${dir} lacks the ${lacking.join(", ")} controller${lacking.length > 1 ? "s" : ""}`);
      break;
    }
    if (dir.length <= host.mount.length) break;
  }
  const why = reasons.join("; ") || `no cgroup above ${host.dir} can hand out controllers`;
  throw new CgroupUnavailableError(
    rootless ? `resource limits need root or a delegated cgroup v2: ${why}` : `cannot use cgroup v2: ${why}`,
  );
}

/** What a v2 folder holds now, for an update: cpu.max is one file for quota and period. */
export interface V2Now {
  /** memory.max, a number of bytes or "max". */
  readonly memoryMax?: string;
  /** cpu.max's two words: quota ("max" or µs) and period. */
  readonly cpuMax?: readonly [string, string];
}

/** v2 says "max" where the spec (and v1) say -1. */
const _max = (n: number) => (n < 0 ? "max" : String(n));

/**
 * The writes that set `limits` in a v2 folder being made (`now` absent) or
 * an existing one (`gcr update`, `now` read from it). memory.swap.max is
 * swap alone where the spec's swap is memory plus swap: the difference is
 * taken from the memory limit given, or the folder's own on an update.
 * Made without swap, a container has none; an update without swap leaves
 * it as it is. cpu.max holds quota and period together: an update of one
 * keeps the folder's other.
 */
export function v2LimitOps(dir: string, limits: ResourceLimits, now?: V2Now): CgroupOp[] {
  const ops: CgroupOp[] = [];
  const memory = limits.memoryBytes;
  if (memory !== undefined) ops.push({ op: "write", path: `${dir}/memory.max`, content: _max(memory) });
  const swap = limits.memorySwapBytes;
  if (swap === -1 || (memory === -1 && swap === undefined)) {
    ops.push({ op: "write", path: `${dir}/memory.swap.max`, content: "max", ifPresent: true });
  } else if (swap !== undefined) {
    const limit = memory ?? (now?.memoryMax === undefined || now.memoryMax === "max" ? -1 : Number(now.memoryMax));
    if (limit === -1) throw new Error(`memory+swap limit ${swap}: it needs a memory limit too`);
    const swapOnly = swap - limit;
    ops.push({ op: "write", path: `${dir}/memory.swap.max`, content: String(swapOnly), ifPresent: swapOnly === 0 });
  } else if (memory !== undefined && now === undefined) {
    // No swap given at creation: none (the limit bounds all of the
    // container's memory; Docker would allow as much swap again).
    ops.push({ op: "write", path: `${dir}/memory.swap.max`, content: "0", ifPresent: true });
  }
  if (limits.memoryReservationBytes !== undefined) {
    ops.push({ op: "write", path: `${dir}/memory.low`, content: _max(limits.memoryReservationBytes) });
  }
  if (limits.cpuShares !== undefined) {
    // runc's conversion: shares 2..262144 onto weight 1..10000.
    const weight = 1 + Math.floor(((limits.cpuShares - 2) * 9999) / 262142);
    ops.push({ op: "write", path: `${dir}/cpu.weight`, content: String(weight) });
  }
  if (limits.cpus !== undefined) {
    ops.push({ op: "write", path: `${dir}/cpu.max`, content: `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}` });
  } else if (limits.cpuQuotaUs !== undefined || limits.cpuPeriodUs !== undefined) {
    const quota = limits.cpuQuotaUs === undefined ? now?.cpuMax?.[0] ?? "max" : _max(limits.cpuQuotaUs);
    const period = limits.cpuPeriodUs ?? now?.cpuMax?.[1] ?? CPU_PERIOD_US;
    ops.push({ op: "write", path: `${dir}/cpu.max`, content: `${quota} ${period}` });
  }
  if (limits.cpusetCpus !== undefined) {
    ops.push({ op: "write", path: `${dir}/cpuset.cpus`, content: limits.cpusetCpus });
  }
  if (limits.cpusetMems !== undefined) {
    ops.push({ op: "write", path: `${dir}/cpuset.mems`, content: limits.cpusetMems });
  }
  if (limits.pidsLimit !== undefined) {
    ops.push({ op: "write", path: `${dir}/pids.max`, content: _max(limits.pidsLimit) });
  }
  return ops;
}

/**
 * The container's one v2 folder, the controllers handed down to it and its
 * limit files. Device rules and swappiness have no v2 file gcr can write:
 * asked for, they are a CgroupUnavailableError rather than ignored.
 */
export function v2Plan(
  host: V2Hierarchy,
  id: string,
  limits: ResourceLimits,
  options: CgroupOptions,
  caller: CgroupCaller,
): VersionPlan {
  if ((limits.devices ?? []).length > 0) {
    throw new CgroupUnavailableError(
      "device rules need cgroup v1 here; v2 needs an eBPF program gcr does not build",
    );
  }
  if (limits.memorySwappiness !== undefined) {
    throw new CgroupUnavailableError(
      "memory swappiness is a cgroup v1 setting; cgroup v2 has no per-cgroup swappiness",
    );
  }
  if (limits.oomKillDisabled) {
    throw new CgroupUnavailableError(
      "disabling the OOM killer is a cgroup v1 setting (memory.oom_control); v2 has none",
    );
  }
  // What the limits (and the caller) need must be had; the hierarchies an
  // OCI container joins for stats only (options.controllers) are enabled
  // where the parent offers them, as runc's v2 manager enables what
  // cgroup.controllers lists: a user's delegated cgroup (systemd's) offers
  // cpu, memory, pids and io but not cpuset, and that must not fail a
  // memory limit.
  const required = [...new Set([..._v2Controllers(limits), ...(options.v2Controllers ?? [])])];
  const requested = _v2Requested(options.controllers ?? []);
  const withOffered = (dir: string) => {
    const offered = readWords(`${dir}/cgroup.controllers`) ?? [];
    return [...new Set([...required, ...requested.filter((c) => offered.includes(c))])];
  };
  const enable = (path: string, controllers: readonly string[]): CgroupOp[] =>
    controllers.length ? [{ op: "write", path, content: controllers.map((c) => `+${c}`).join(" ") }] : [];
  const ops: CgroupOp[] = [];
  let dir: string;
  let folders: string[];
  if (options.path === undefined) {
    const base = _v2Base(host, required, caller);
    const needed = withOffered(base);
    const folder = `${base}/${GCR_FOLDER}`;
    dir = `${folder}/${id}`;
    folders = [folder];
    const enabledInBase = readWords(`${base}/cgroup.subtree_control`) ?? [];
    ops.push(
      ...enable(`${base}/cgroup.subtree_control`, needed.filter((c) => !enabledInBase.includes(c))),
      { op: "mkdir", path: folder, existing: "ok" },
      // The gcr folder never holds processes, so it may always hand controllers on.
      ...enable(`${folder}/cgroup.subtree_control`, needed),
      { op: "mkdir", path: dir, existing: "error" },
    );
  } else {
    // The caller chose the place: controllers are handed down from the
    // nearest existing ancestor through each folder made on the way.
    const placed = placement(host.mount, host.dir, id, options.path);
    dir = placed.dir;
    folders = [];
    const top = nearestExisting(placed.parents[0] ?? dir.slice(0, dir.lastIndexOf("/")));
    const needed = withOffered(top);
    const enabledInTop = readWords(`${top}/cgroup.subtree_control`) ?? [];
    ops.push(...enable(`${top}/cgroup.subtree_control`, needed.filter((c) => !enabledInTop.includes(c))));
    for (const parent of placed.parents) {
      ops.push({ op: "mkdir", path: parent, existing: "ok" }, ...enable(`${parent}/cgroup.subtree_control`, needed));
    }
    ops.push({ op: "mkdir", path: dir, existing: "error" });
  }
  ops.push(...v2LimitOps(dir, limits));
  return { dirs: [dir], folders, ops };
}
