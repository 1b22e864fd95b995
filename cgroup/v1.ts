/**
 * A container's cgroup on cgroup v1: a folder in each hierarchy it joins
 * (memory, cpu, cpuacct and pids always; cpuset, devices or freezer when
 * the limits or the caller ask for them), each folder's limit files
 * written in the order the kernel accepts them, and the device rules in
 * devices.allow and devices.deny.
 *
 * @module
 */
import { ownedBy, readWords } from "./files.ts";
import { CgroupUnavailableError, V1_CONTROLLERS, type V1Hierarchy, type V2Hierarchy } from "./hierarchies.ts";
import type { DeviceRule, ResourceLimits } from "./limits.ts";
import type { CgroupOp } from "./ops.ts";
import {
  type CgroupCaller,
  type CgroupOptions,
  controllersTouched,
  CPU_PERIOD_US,
  cpuQuotaUs,
  nearestExisting,
  placement,
  type VersionPlan,
} from "./version_plan.ts";

import { exists } from "../host/files.ts";
/** `c 1:3 rwm`, as devices.allow and devices.deny take a rule. */
export function deviceRuleLine(rule: DeviceRule): string {
  const number = (n: number | undefined) => (n === undefined || n < 0 ? "*" : String(n));
  return `${rule.type} ${number(rule.major)}:${number(rule.minor)} ${rule.access}`;
}

function _deviceOps(dir: string, rules: readonly DeviceRule[]): CgroupOp[] {
  return rules.map((rule, i) => {
    if (!["a", "c", "b"].includes(rule.type)) throw new Error(`device rule ${i}: type ${rule.type} (a, c or b)`);
    if (!/^(?!.*(.).*\1)[rwm]+$/.test(rule.access)) {
      throw new Error(`device rule ${i}: access ${JSON.stringify(rule.access)} (some of r, w, m)`);
    }
    return {
      op: "write",
      path: `${dir}/devices.${rule.allow ? "allow" : "deny"}`,
      content: deviceRuleLine(rule),
    } satisfies CgroupOp;
  });
}

/** What a folder's memory files hold now, for an update: the order of the writes depends on them. */
export interface V1MemoryNow {
  /** memory.limit_in_bytes. */
  readonly limit: number;
  /** memory.memsw.limit_in_bytes, when the kernel accounts swap. */
  readonly memsw?: number;
}

/** Whether a v1 limit file's value is a limit: "unlimited" reads back as PAGE_COUNTER_MAX pages (9223372036854771712). */
export const isLimit = (bytes: number | undefined): bytes is number =>
  bytes !== undefined && Number.isSafeInteger(bytes);

/**
 * The writes that set `limits` in one v1 folder of a hierarchy with
 * `controllers`: for a folder being made (`now` absent) or an existing
 * one (`gcr update`, `now` read from its memory files). Memory and
 * memory+swap go in the order the kernel accepts, as runc writes them:
 * memsw must never be below the memory limit, so memsw first when it
 * rises above the current limit (or becomes -1), the memory limit first
 * otherwise. An update without swap leaves memsw alone, except that a
 * container without swap (memsw equal to its limit, as gcr makes it when
 * none is given) keeps none.
 */
export function v1LimitOps(
  dir: string,
  controllers: readonly string[],
  limits: ResourceLimits,
  now?: V1MemoryNow,
): CgroupOp[] {
  const ops: CgroupOp[] = [];
  if (controllers.includes("cpuset")) {
    if (limits.cpusetCpus !== undefined) {
      ops.push({ op: "write", path: `${dir}/cpuset.cpus`, content: limits.cpusetCpus });
    }
    if (limits.cpusetMems !== undefined) {
      ops.push({ op: "write", path: `${dir}/cpuset.mems`, content: limits.cpusetMems });
    }
  }
  if (controllers.includes("memory")) {
    const memory = limits.memoryBytes;
    // No swap given: none, as far as the kernel accounts it (the memory
    // limit again; -1 lifts both). -1 swap: unlimited (without accounting
    // swap is not limited anyway, hence ifPresent).
    const keepsNoSwap = now === undefined || (isLimit(now.limit) && now.memsw === now.limit);
    const memsw = limits.memorySwapBytes ?? (memory === -1 ? -1 : keepsNoSwap ? memory : undefined);
    const memoryOp: CgroupOp[] = memory === undefined
      ? []
      : [{ op: "write", path: `${dir}/memory.limit_in_bytes`, content: String(memory) }];
    const memswOp: CgroupOp[] = memsw === undefined ? [] : [{
      op: "write",
      path: `${dir}/memory.memsw.limit_in_bytes`,
      content: String(memsw),
      ifPresent: memsw === -1 || memsw === memory,
    }];
    const swapFirst = memsw !== undefined && (memsw === -1 || (now !== undefined && now.limit < memsw));
    ops.push(...(swapFirst ? [...memswOp, ...memoryOp] : [...memoryOp, ...memswOp]));
    if (limits.memoryReservationBytes !== undefined) {
      ops.push({
        op: "write",
        path: `${dir}/memory.soft_limit_in_bytes`,
        content: String(limits.memoryReservationBytes),
      });
    }
    if (limits.memorySwappiness !== undefined) {
      ops.push({ op: "write", path: `${dir}/memory.swappiness`, content: String(limits.memorySwappiness) });
    }
    if (limits.oomKillDisabled) ops.push({ op: "write", path: `${dir}/memory.oom_control`, content: "1" });
  }
  if (controllers.includes("cpu")) {
    if (limits.cpuShares !== undefined) {
      ops.push({ op: "write", path: `${dir}/cpu.shares`, content: String(limits.cpuShares) });
    }
    // The period first: the kernel checks a quota against the period it has.
    const period = limits.cpus !== undefined ? CPU_PERIOD_US : limits.cpuPeriodUs;
    const quota = limits.cpus !== undefined ? cpuQuotaUs(limits.cpus) : limits.cpuQuotaUs;
    if (period !== undefined) ops.push({ op: "write", path: `${dir}/cpu.cfs_period_us`, content: String(period) });
    if (quota !== undefined) ops.push({ op: "write", path: `${dir}/cpu.cfs_quota_us`, content: String(quota) });
  }
  if (controllers.includes("pids") && limits.pidsLimit !== undefined) {
    const max = limits.pidsLimit < 0 ? "max" : String(limits.pidsLimit);
    ops.push({ op: "write", path: `${dir}/pids.max`, content: max });
  }
  // In the order given, as the spec asks: usually "deny all" first, then allows.
  if (controllers.includes("devices")) ops.push(..._deviceOps(dir, limits.devices ?? []));
  return ops;
}

/**
 * A memory+swap limit beyond the memory limit needs the kernel to account
 * swap: memsw files exist only then (CONFIG_MEMCG_SWAP, not turned off
 * with swapaccount=0), in every cgroup of the memory hierarchy, the root
 * (`memoryMount`) too.
 */
export function checkSwapAccounting(memoryMount: string, limits: ResourceLimits): void {
  const swap = limits.memorySwapBytes;
  if (swap === undefined || swap === -1 || swap === limits.memoryBytes) return;
  if (!exists(`${memoryMount}/memory.memsw.limit_in_bytes`)) {
    throw new CgroupUnavailableError(
      `memory+swap limit ${swap}: this kernel does not account swap (no memory.memsw.limit_in_bytes; ` +
        "boot with swapaccount=1); only -1 (unlimited) or the memory limit itself can be honoured",
    );
  }
}

/**
 * The container's folder in each v1 hierarchy it joins, with the limit
 * files of that hierarchy's controllers. A limit no hierarchy here can
 * enforce, or a hierarchy a rootless caller does not own, is a
 * CgroupUnavailableError rather than a limit silently not set.
 */
export function v1Plan(
  hierarchies: readonly V1Hierarchy[],
  id: string,
  limits: ResourceLimits,
  options: CgroupOptions,
  caller: CgroupCaller,
  unified?: V2Hierarchy,
): VersionPlan {
  const touches = controllersTouched(limits);
  const requested = options.controllers ?? [];
  const has = (controller: string) => hierarchies.some((h) => h.controllers.includes(controller));
  for (const controller of requested) {
    if (!has(controller)) {
      throw new CgroupUnavailableError(`no cgroup v1 hierarchy has the ${controller} controller`);
    }
  }
  // The default four always (cpuacct for the CPU usage gcr reports), then
  // what the limits or the caller ask for.
  const wanted = new Set<string>([
    ...V1_CONTROLLERS,
    ...requested,
    ...(touches.cpuset ? ["cpuset"] : []),
    ...(touches.devices ? ["devices"] : []),
  ]);
  const used = options.everyHierarchy
    ? hierarchies
    : hierarchies.filter((h) => h.controllers.some((c) => wanted.has(c)));
  for (const controller of ["memory", "cpu", "pids", "cpuset", "devices"] as const) {
    if (touches[controller] && !has(controller)) {
      throw new CgroupUnavailableError(`cannot limit ${controller}: no cgroup v1 hierarchy has that controller`);
    }
  }
  const placed = used.map((h) => ({ h, ...placement(h.mount, h.dir, id, options.path) }));
  if (caller.rootless) {
    // Where the container's folders are made must be the user's: under its
    // own cgroup, or under config.json's cgroupsPath (an admin may chown a
    // v1 folder to a user, which is v1's delegation, and runc uses it).
    for (const { dir, parents } of placed) {
      const where = nearestExisting(parents[0] ?? dir.slice(0, dir.lastIndexOf("/")));
      if (!ownedBy(where, caller.uid)) {
        throw new CgroupUnavailableError(
          `resource limits need root or a delegated cgroup v2: this host uses cgroup v1, and ${where} is not the user's`,
        );
      }
    }
  }
  const memory = hierarchies.find((h) => h.controllers.includes("memory"));
  if (memory) checkSwapAccounting(memory.mount, limits);
  const ops: CgroupOp[] = [];
  const dirs: string[] = [];
  const folders: string[] = [];
  for (const { h, dir, parents, shared } of placed) {
    dirs.push(dir);
    folders.push(...shared);
    const isCpuset = h.controllers.includes("cpuset");
    // A new cpuset folder starts with no CPUs and no memory nodes, and the
    // kernel refuses to add a process to it (ENOSPC): each folder gcr makes
    // gets its parent's sets, the container's folder its own if given.
    // Read only in the cpuset hierarchy, and only where a set is not given.
    let from: string | undefined;
    const inherited = (file: string) => {
      from ??= nearestExisting(parents[0] ?? dir.slice(0, dir.lastIndexOf("/")));
      return (readWords(`${from}/${file}`) ?? []).join("");
    };
    const cpusetOps = (folder: string, cpus?: string, mems?: string): CgroupOp[] =>
      isCpuset
        ? [
          { op: "write", path: `${folder}/cpuset.cpus`, content: cpus ?? inherited("cpuset.cpus") },
          { op: "write", path: `${folder}/cpuset.mems`, content: mems ?? inherited("cpuset.mems") },
        ]
        : [];
    for (const parent of parents) {
      ops.push({ op: "mkdir", path: parent, existing: "ok" });
      // The shared gcr folder may exist already, with its sets: only a folder missing now is new.
      if (isCpuset && (options.path !== undefined || !exists(parent))) ops.push(...cpusetOps(parent));
    }
    ops.push({ op: "mkdir", path: dir, existing: "error" });
    // A new folder's cpusets are written whole (the parent's where not given), before anything joins it.
    ops.push(...cpusetOps(dir, limits.cpusetCpus, limits.cpusetMems));
    const { cpusetCpus: _cpus, cpusetMems: _mems, ...rest } = limits;
    ops.push(...v1LimitOps(dir, h.controllers, rest));
  }
  // A hybrid host's v2 hierarchy, last: its folder holds no limit of gcr's
  // (hugetlb is the only controller it may have), and the first folder
  // tells a reopened cgroup's version. Not rootless: a v2 move needs the
  // common ancestor of both cgroups to be the user's, which a delegated v1
  // folder never gives, and runc's v1 manager joins no v2 hierarchy at all.
  if (options.everyHierarchy && unified && !caller.rootless) {
    const { dir, parents, shared } = placement(unified.mount, unified.dir, id, options.path);
    for (const parent of parents) ops.push({ op: "mkdir", path: parent, existing: "ok" });
    ops.push({ op: "mkdir", path: dir, existing: "error" });
    dirs.push(dir);
    folders.push(...shared);
  }
  return { dirs, folders, ops };
}
