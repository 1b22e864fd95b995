/**
 * A container's cgroup, behind one interface whatever the host mounts:
 * cgroup v2 (one unified hierarchy, the default of modern distributions) or
 * cgroup v1 (one hierarchy per controller, as on this project's VM, where
 * memory, cpu, cpuacct and pids are v1 and /sys/fs/cgroup/unified is a
 * cgroup2 mount with hugetlb only).
 *
 * Creating a cgroup is a plan first (plain ops: mkdir, write), then the
 * plan run: `--trace` and `explain` show the same ops gcr performs.
 *
 * @example
 * ```ts
 * const cgroup = createContainerCgroup("0123abcd4567", { memoryBytes: 64 << 20 });
 * try {
 *   cgroup.addProcess(pid); // while the child waits at its gate
 *   // … wait for the container …
 *   if (cgroup.wasOomKilled(exit.signal)) console.log("OOM-killed");
 * } finally {
 *   await cgroup.remove();
 * }
 * ```
 *
 * @module
 */
import {
  type CgroupHost,
  CgroupUnavailableError,
  detectCgroups,
  V1_CONTROLLERS,
  type V1Hierarchy,
  type V2Hierarchy,
} from "./hierarchies.ts";
import { exists, ownedBy, readWords } from "./files.ts";
import type { DeviceRule, ResourceLimits } from "./limits.ts";
import { type CgroupOp, errorCode, runCgroupOp, showCgroupOp } from "./ops.ts";

/** The folder under the caller's cgroup that holds gcr's containers. */
export const GCR_FOLDER = "gcr";
/** The CFS period gcr uses for `--cpus`, as Docker: 100 ms. */
export const CPU_PERIOD_US = 100_000;

/** A container's cgroup, made by createContainerCgroup. */
export interface ContainerCgroup {
  readonly version: 1 | 2;
  /** The container's cgroup folders: one on v2, one per hierarchy on v1. */
  readonly paths: readonly string[];
  /** What was done to make it (the ops `explain` and `--trace` show); empty for an opened one. */
  readonly ops: readonly CgroupOp[];
  /**
   * Folders above `paths` that were made for this container (a
   * `linux.cgroupsPath`'s missing parents): remove() takes them away when
   * empty. Keep them with `paths` to reopen the cgroup (openContainerCgroup).
   */
  readonly created: readonly string[];
  /** Moves a process (all its threads) into the cgroup, in every hierarchy. */
  addProcess(pid: number): void;
  /** The ops addProcess performs, for trace: `write …/cgroup.procs: <pid>`. */
  addProcessOps(pid: number | "<pid>"): CgroupOp[];
  /**
   * Whether the kernel's OOM killer killed a process of the container.
   * `signal` is the signal the first process died of, if any: on a v1
   * kernel without the `oom_kill` counter, a SIGKILL plus a memory limit hit
   * (`memory.failcnt`) counts as an OOM kill.
   */
  wasOomKilled(signal?: number | null): boolean;
  /** CPU time used by the container's processes, in microseconds. */
  cpuUsageUs(): number;
  /**
   * Kills what is left (SIGKILL), waits until the cgroup is empty and removes
   * it. Safe to call twice and after the container was killed.
   */
  remove(timeoutMs?: number): Promise<void>;
}

// ---------------------------------------------------------------------------
// Plans

/** Which settings a set of limits touches, by controller. */
function _touches(limits: ResourceLimits) {
  const memory = limits.memoryBytes !== undefined || limits.memoryReservationBytes !== undefined ||
    limits.memorySwapBytes !== undefined || limits.memorySwappiness !== undefined;
  const cpu = limits.cpus !== undefined || limits.cpuShares !== undefined || limits.cpuQuotaUs !== undefined ||
    limits.cpuPeriodUs !== undefined;
  const cpuset = limits.cpusetCpus !== undefined || limits.cpusetMems !== undefined;
  const devices = (limits.devices ?? []).length > 0;
  return { memory, cpu, cpuset, devices, pids: limits.pidsLimit !== undefined };
}

/** The v2 controllers a set of limits needs. */
function _v2Controllers(limits: ResourceLimits): string[] {
  const touches = _touches(limits);
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

const cpuQuotaUs = (cpus: number) => Math.max(1000, Math.round(cpus * CPU_PERIOD_US));

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

function _hasProcesses(dir: string): boolean {
  return (readWords(`${dir}/cgroup.procs`) ?? []).length > 0;
}

/**
 * `linux.cgroupsPath` as a folder in a hierarchy: absolute paths are taken
 * from the hierarchy's mount point (the runtime spec's rule), relative ones
 * from the caller's cgroup. `..` is refused: the path must not climb out.
 */
function _explicitDir(mount: string, callerDir: string, path: string): string {
  const parts = path.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.length === 0 || parts.includes("..")) {
    throw new Error(`invalid cgroups path ${JSON.stringify(path)}: it must name a cgroup and not contain ..`);
  }
  return `${path.startsWith("/") ? mount : callerDir}/${parts.join("/")}`;
}

/**
 * Where a container's folder goes in one hierarchy: the folder, and the
 * folders above it that may have to be made first (outermost first).
 * Default: `gcr/<id>` under the caller's cgroup, with the shared `gcr`
 * folder. With `options.path`: that path, with each missing ancestor below
 * the hierarchy's root (checked now; mkdir-if-missing copes with a race).
 */
function _placement(mount: string, callerDir: string, id: string, path: string | undefined) {
  if (path === undefined) {
    const folder = `${callerDir}/${GCR_FOLDER}`;
    return { dir: `${folder}/${id}`, parents: [folder], shared: [folder] };
  }
  const dir = _explicitDir(mount, callerDir, path);
  const parents: string[] = [];
  for (let up = dir.slice(0, dir.lastIndexOf("/")); up.length > mount.length; up = up.slice(0, up.lastIndexOf("/"))) {
    if (exists(up)) break;
    parents.unshift(up);
  }
  return { dir, parents, shared: [] as string[] };
}

/** The nearest folder at or above `dir` that exists: where a new cpuset folder copies its sets from. */
function _nearestExisting(dir: string): string {
  let up = dir;
  while (up.includes("/") && !exists(up)) up = up.slice(0, up.lastIndexOf("/"));
  return up;
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
function _v2Base(host: V2Hierarchy, needed: readonly string[], uid: number): string {
  const rootless = uid !== 0;
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

/** What a plan yields: the container's folders, the folders above them it may make, and the ops. */
interface _Plan {
  dirs: string[];
  /** Shared `gcr` folders: removed when empty, whoever made them. */
  folders: string[];
  ops: CgroupOp[];
}

function _v2Plan(host: V2Hierarchy, id: string, limits: ResourceLimits, options: CgroupOptions, uid: number): _Plan {
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
  const extra = [...(options.v2Controllers ?? []), ..._v2Requested(options.controllers ?? [])];
  const needed = [...new Set([..._v2Controllers(limits), ...extra])];
  const enable = (path: string, controllers: readonly string[]): CgroupOp[] =>
    controllers.length ? [{ op: "write", path, content: controllers.map((c) => `+${c}`).join(" ") }] : [];
  const ops: CgroupOp[] = [];
  let dir: string;
  let folders: string[];
  if (options.path === undefined) {
    const base = _v2Base(host, needed, uid);
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
    const placed = _placement(host.mount, host.dir, id, options.path);
    dir = placed.dir;
    folders = [];
    const top = _nearestExisting(placed.parents[0] ?? dir.slice(0, dir.lastIndexOf("/")));
    const enabledInTop = readWords(`${top}/cgroup.subtree_control`) ?? [];
    ops.push(...enable(`${top}/cgroup.subtree_control`, needed.filter((c) => !enabledInTop.includes(c))));
    for (const parent of placed.parents) {
      ops.push({ op: "mkdir", path: parent, existing: "ok" }, ...enable(`${parent}/cgroup.subtree_control`, needed));
    }
    ops.push({ op: "mkdir", path: dir, existing: "error" });
  }
  if (limits.memoryBytes !== undefined) {
    ops.push({ op: "write", path: `${dir}/memory.max`, content: String(limits.memoryBytes) });
  }
  const swap = limits.memorySwapBytes;
  if (swap === -1) {
    ops.push({ op: "write", path: `${dir}/memory.swap.max`, content: "max", ifPresent: true });
  } else if (limits.memoryBytes !== undefined) {
    // v2's swap.max is swap alone; the spec's swap is memory plus swap. No
    // swap given: none (the limit bounds all of the container's memory;
    // Docker would allow as much swap again).
    const swapOnly = swap === undefined ? 0 : swap - limits.memoryBytes;
    ops.push({ op: "write", path: `${dir}/memory.swap.max`, content: String(swapOnly), ifPresent: swapOnly === 0 });
  }
  if (limits.memoryReservationBytes !== undefined && limits.memoryReservationBytes >= 0) {
    ops.push({ op: "write", path: `${dir}/memory.low`, content: String(limits.memoryReservationBytes) });
  }
  if (limits.cpuShares !== undefined) {
    // runc's conversion: shares 2..262144 onto weight 1..10000.
    const weight = 1 + Math.floor(((limits.cpuShares - 2) * 9999) / 262142);
    ops.push({ op: "write", path: `${dir}/cpu.weight`, content: String(weight) });
  }
  if (limits.cpus !== undefined) {
    ops.push({ op: "write", path: `${dir}/cpu.max`, content: `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}` });
  } else if (limits.cpuQuotaUs !== undefined || limits.cpuPeriodUs !== undefined) {
    const quota = limits.cpuQuotaUs === undefined || limits.cpuQuotaUs < 0 ? "max" : String(limits.cpuQuotaUs);
    ops.push({ op: "write", path: `${dir}/cpu.max`, content: `${quota} ${limits.cpuPeriodUs ?? CPU_PERIOD_US}` });
  }
  if (limits.cpusetCpus !== undefined) {
    ops.push({ op: "write", path: `${dir}/cpuset.cpus`, content: limits.cpusetCpus });
  }
  if (limits.cpusetMems !== undefined) {
    ops.push({ op: "write", path: `${dir}/cpuset.mems`, content: limits.cpusetMems });
  }
  if (limits.pidsLimit !== undefined) {
    ops.push({ op: "write", path: `${dir}/pids.max`, content: String(limits.pidsLimit) });
  }
  return { dirs: [dir], folders, ops };
}

function _v1Plan(
  hierarchies: readonly V1Hierarchy[],
  id: string,
  limits: ResourceLimits,
  options: CgroupOptions,
  uid: number,
): _Plan {
  const touches = _touches(limits);
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
  const used = hierarchies.filter((h) => h.controllers.some((c) => wanted.has(c)));
  for (const controller of ["memory", "cpu", "pids", "cpuset", "devices"] as const) {
    if (touches[controller] && !has(controller)) {
      throw new CgroupUnavailableError(`cannot limit ${controller}: no cgroup v1 hierarchy has that controller`);
    }
  }
  if (uid !== 0) {
    const notOwned = used.find((h) => !ownedBy(h.dir, uid));
    if (notOwned) {
      throw new CgroupUnavailableError(
        `resource limits need root or a delegated cgroup v2: this host uses cgroup v1, and ${notOwned.dir} is not the user's`,
      );
    }
  }
  const swap = limits.memorySwapBytes;
  const memory = hierarchies.find((h) => h.controllers.includes("memory"));
  if (swap !== undefined && swap !== -1 && swap !== limits.memoryBytes && memory) {
    // memsw files exist only with swap accounting (CONFIG_MEMCG_SWAP, not
    // turned off with swapaccount=0); every cgroup has them then, the root too.
    if (!exists(`${memory.mount}/memory.memsw.limit_in_bytes`)) {
      throw new CgroupUnavailableError(
        `memory+swap limit ${swap}: this kernel does not account swap (no memory.memsw.limit_in_bytes; ` +
          "boot with swapaccount=1); only -1 (unlimited) or the memory limit itself can be honoured",
      );
    }
  }
  const ops: CgroupOp[] = [];
  const dirs: string[] = [];
  const folders: string[] = [];
  for (const h of used) {
    const { dir, parents, shared } = _placement(h.mount, h.dir, id, options.path);
    dirs.push(dir);
    folders.push(...shared);
    const isCpuset = h.controllers.includes("cpuset");
    // A new cpuset folder starts with no CPUs and no memory nodes, and the
    // kernel refuses to add a process to it (ENOSPC): each folder gcr makes
    // gets its parent's sets, the container's folder its own if given.
    const from = isCpuset ? _nearestExisting(parents[0] ?? dir.slice(0, dir.lastIndexOf("/"))) : "";
    const inherited = (file: string) => (readWords(`${from}/${file}`) ?? []).join("");
    const cpusetOps = (folder: string, cpus = inherited("cpuset.cpus"), mems = inherited("cpuset.mems")): CgroupOp[] =>
      isCpuset
        ? [
          { op: "write", path: `${folder}/cpuset.cpus`, content: cpus },
          { op: "write", path: `${folder}/cpuset.mems`, content: mems },
        ]
        : [];
    for (const parent of parents) {
      ops.push({ op: "mkdir", path: parent, existing: "ok" });
      // The shared gcr folder may exist already, with its sets: only a folder missing now is new.
      if (isCpuset && (options.path !== undefined || !exists(parent))) ops.push(...cpusetOps(parent));
    }
    ops.push({ op: "mkdir", path: dir, existing: "error" });
    ops.push(...cpusetOps(dir, limits.cpusetCpus, limits.cpusetMems));
    if (h.controllers.includes("memory")) {
      if (limits.memoryBytes !== undefined) {
        // limit_in_bytes first: the kernel refuses a memsw limit below it.
        ops.push({ op: "write", path: `${dir}/memory.limit_in_bytes`, content: String(limits.memoryBytes) });
      }
      // No swap given: none, as far as the kernel accounts it. -1: unlimited
      // (without accounting swap is not limited anyway, hence ifPresent).
      const memsw = swap ?? limits.memoryBytes;
      if (memsw !== undefined) {
        ops.push({
          op: "write",
          path: `${dir}/memory.memsw.limit_in_bytes`,
          content: String(memsw),
          ifPresent: memsw === -1 || memsw === limits.memoryBytes,
        });
      }
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
    }
    if (h.controllers.includes("cpu")) {
      if (limits.cpuShares !== undefined) {
        ops.push({ op: "write", path: `${dir}/cpu.shares`, content: String(limits.cpuShares) });
      }
      // The period first: the kernel checks a quota against the period it has.
      const period = limits.cpus !== undefined ? CPU_PERIOD_US : limits.cpuPeriodUs;
      const quota = limits.cpus !== undefined ? cpuQuotaUs(limits.cpus) : limits.cpuQuotaUs;
      if (period !== undefined) ops.push({ op: "write", path: `${dir}/cpu.cfs_period_us`, content: String(period) });
      if (quota !== undefined) ops.push({ op: "write", path: `${dir}/cpu.cfs_quota_us`, content: String(quota) });
    }
    if (h.controllers.includes("pids") && limits.pidsLimit !== undefined) {
      ops.push({ op: "write", path: `${dir}/pids.max`, content: String(limits.pidsLimit) });
    }
    // In the order given, as the spec asks: usually "deny all" first, then allows.
    if (h.controllers.includes("devices")) ops.push(..._deviceOps(dir, limits.devices ?? []));
  }
  return { dirs, folders, ops };
}

/** Where and how: `host` defaults to what this host mounts; `uid` to the caller's. */
export interface CgroupOptions {
  readonly host?: CgroupHost;
  /** Use the v2 hierarchy of a hybrid host (tests: /sys/fs/cgroup/unified here). */
  readonly preferV2?: boolean;
  /** More v2 controllers to enable for the container (beyond those its limits need). */
  readonly v2Controllers?: readonly string[];
  readonly uid?: number;
  /**
   * The container's cgroup path, as OCI `linux.cgroupsPath`: absolute paths
   * (`/libpod_parent/libpod-<id>`) from each hierarchy's root, relative ones
   * from the caller's cgroup. Default: `gcr/<id>` under the caller's cgroup.
   * Missing folders above it are made, and removed again with the container
   * when empty; the container's own folder must not exist yet.
   */
  readonly path?: string;
  /**
   * Controllers whose hierarchies the container joins even without limits
   * for them, in v1 names: an OCI container needs its cgroup in every
   * hierarchy (`["memory", "cpu", "cpuacct", "pids", "cpuset", "devices",
   * "freezer"]`), pause needs `freezer`. On v1 the memory, cpu, cpuacct and
   * pids hierarchies are always joined; on v2 these enable controllers
   * (devices and freezer are built in there).
   */
  readonly controllers?: readonly string[];
}

/** The version and hierarchy a container's cgroup goes into, or why none can. */
function _choose(options: CgroupOptions): V2Hierarchy | { version: 1; hierarchies: readonly V1Hierarchy[] } {
  const host = options.host ?? detectCgroups();
  if (host.version === 2) return host;
  if (options.preferV2) {
    if (!host.unified) throw new CgroupUnavailableError("this host mounts no cgroup v2 hierarchy");
    return host.unified;
  }
  // Rootless on a hybrid host: the v1 hierarchies belong to root, the v2 one may be delegated.
  const uid = options.uid ?? Deno.uid() ?? 0;
  if (uid !== 0 && host.unified && ownedBy(host.unified.dir, uid)) return host.unified;
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
  const uid = options.uid ?? Deno.uid() ?? 0;
  const chosen = _choose(options);
  return chosen.version === 2
    ? { version: 2, ..._v2Plan(chosen, id, limits, options, uid) }
    : { version: 1, ..._v1Plan(chosen.hierarchies, id, limits, options, uid) };
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

// ---------------------------------------------------------------------------
// Doing it

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The pids in a cgroup folder; an absent folder is empty. */
function _pids(dir: string): number[] {
  return (readWords(`${dir}/cgroup.procs`) ?? []).map(Number);
}

function _counter(path: string, key: string): number | undefined {
  try {
    const line = Deno.readTextFileSync(path).split("\n").find((l) => l.startsWith(`${key} `));
    return line === undefined ? undefined : Number(line.slice(key.length + 1));
  } catch {
    return undefined;
  }
}

function _rmdir(dir: string): "gone" | "busy" {
  try {
    Deno.removeSync(dir);
    return "gone";
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "gone";
    if (error instanceof Deno.errors.Busy) return "busy";
    throw new Error(`rmdir ${dir}: ${errorCode(error)}`, { cause: error });
  }
}

/** Removes folders that may be shared or hold other cgroups: deepest first, and only those now empty. */
function _removeIfEmpty(folders: readonly string[]): void {
  for (const folder of [...folders].sort((a, b) => b.length - a.length)) {
    try {
      Deno.removeSync(folder);
    } catch { /* in use (another container's folder below it), or already gone */ }
  }
}

/** The folder of a cgroup in the freezer: v1's freezer hierarchy, or v2's single folder. */
function _freezerDir(cgroup: Pick<ContainerCgroup, "version" | "paths">): string {
  const dir = cgroup.version === 2 ? cgroup.paths[0] : cgroup.paths.find((p) => exists(`${p}/freezer.state`));
  if (dir === undefined) {
    throw new CgroupUnavailableError(
      `the container's cgroup is in no freezer hierarchy (${cgroup.paths.join(", ")}): ` +
        'create it with controllers: ["freezer"]',
    );
  }
  return dir;
}

/** Whether the container's processes are frozen: v1 freezer.state, v2 the `frozen` key of cgroup.events. */
export function freezerState(cgroup: Pick<ContainerCgroup, "version" | "paths">): "frozen" | "freezing" | "thawed" {
  const dir = _freezerDir(cgroup);
  if (cgroup.version === 2) {
    const frozen = _counter(`${dir}/cgroup.events`, "frozen") === 1;
    const asked = readWords(`${dir}/cgroup.freeze`)?.[0] === "1";
    return frozen ? "frozen" : asked ? "freezing" : "thawed";
  }
  const state = readWords(`${dir}/freezer.state`)?.[0];
  return state === "FROZEN" ? "frozen" : state === "FREEZING" ? "freezing" : "thawed";
}

/** The write that freezes or thaws a container's cgroup (for trace and explain). */
export function freezerOp(cgroup: Pick<ContainerCgroup, "version" | "paths">, frozen: boolean): CgroupOp {
  const dir = _freezerDir(cgroup);
  return cgroup.version === 2
    ? { op: "write", path: `${dir}/cgroup.freeze`, content: frozen ? "1" : "0" }
    : { op: "write", path: `${dir}/freezer.state`, content: frozen ? "FROZEN" : "THAWED" };
}

/**
 * Freezes every process of the container (`gcr pause`) and waits until the
 * kernel reports them frozen: writing FROZEN only starts it (v1 reads
 * FREEZING meanwhile; v2 sets `frozen 1` in cgroup.events when done). A
 * v1 freeze can stall on a task that does not stop; the write is repeated,
 * as runc does, and after `timeoutMs` the cgroup is thawed again and the
 * error says so. Returns the ops it ran.
 */
export async function freeze(
  cgroup: Pick<ContainerCgroup, "version" | "paths">,
  timeoutMs = 5000,
): Promise<CgroupOp[]> {
  const op = freezerOp(cgroup, true);
  const deadline = performance.now() + timeoutMs;
  for (let round = 0;; round++) {
    if (round % 10 === 0) runCgroupOp(op);
    if (freezerState(cgroup) === "frozen") return [op];
    if (performance.now() > deadline) {
      const back = freezerOp(cgroup, false);
      runCgroupOp(back);
      throw new Error(`cannot freeze ${op.path}: still ${freezerState(cgroup)} after ${timeoutMs} ms; thawed again`);
    }
    await sleep(round < 10 ? 1 : 10);
  }
}

/** Thaws the container's processes (`gcr resume`); thawing takes effect at once. Returns the op it ran. */
export function thaw(cgroup: Pick<ContainerCgroup, "version" | "paths">): CgroupOp[] {
  const op = freezerOp(cgroup, false);
  runCgroupOp(op);
  return [op];
}

/** The handle on a container's cgroup folders, made now or long ago. */
function _handle(
  version: 1 | 2,
  dirs: readonly string[],
  ops: readonly CgroupOp[],
  created: string[],
  shared: readonly string[],
): ContainerCgroup {
  const cgroup: ContainerCgroup = {
    version,
    paths: dirs,
    ops,
    created,
    addProcessOps: (pid) => dirs.map((dir) => ({ op: "write", path: `${dir}/cgroup.procs`, content: String(pid) })),
    addProcess(pid) {
      for (const op of cgroup.addProcessOps(pid)) runCgroupOp(op);
    },
    wasOomKilled(signal) {
      if (version === 2) return (_counter(`${dirs[0]}/memory.events`, "oom_kill") ?? 0) > 0;
      const memory = dirs.find((dir) => exists(`${dir}/memory.oom_control`));
      if (!memory) return false;
      const kills = _counter(`${memory}/memory.oom_control`, "oom_kill");
      if (kills !== undefined) return kills > 0;
      // Kernels before 4.13 have no oom_kill counter: a SIGKILL after the limit was hit.
      return signal === 9 && Number(readWords(`${memory}/memory.failcnt`)?.[0] ?? 0) > 0;
    },
    cpuUsageUs() {
      if (version === 2) return _counter(`${dirs[0]}/cpu.stat`, "usage_usec") ?? 0;
      for (const dir of dirs) {
        const ns = readWords(`${dir}/cpuacct.usage`)?.[0];
        if (ns !== undefined) return Number(ns) / 1000;
      }
      return 0;
    },
    async remove(timeoutMs = 5000) {
      const deadline = performance.now() + timeoutMs;
      // v2 kills the whole cgroup in one write (5.14+); v1, and older v2,
      // kill by pid until nothing is left, since a process may fork meanwhile.
      if (version === 2) {
        try {
          Deno.writeTextFileSync(`${dirs[0]}/cgroup.kill`, "1", { create: false });
        } catch { /* no cgroup.kill (older kernel) or already gone: kill by pid below */ }
      }
      for (let round = 0;; round++) {
        const left = dirs.flatMap(_pids);
        for (const pid of new Set(left)) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* exited meanwhile */ }
        }
        // A frozen process cannot act on SIGKILL (v1 does not even let it
        // die): thaw after the signal is queued, so nothing runs in between.
        if (round === 0 && left.length > 0) _thawIfFrozen(version, dirs);
        // A cgroup is empty for rmdir once its processes have exited, even unreaped.
        const busy = left.length > 0 ? dirs : dirs.filter((dir) => _rmdir(dir) === "busy");
        if (busy.length === 0) break;
        if (performance.now() > deadline) {
          throw new Error(`cannot remove cgroup ${busy.join(", ")}: still has processes ${left.join(" ")}`);
        }
        await sleep(10);
      }
      // Folders made for it go when empty: another container may be below them.
      _removeIfEmpty([...created, ...shared]);
    },
  };
  return cgroup;
}

function _thawIfFrozen(version: 1 | 2, dirs: readonly string[]): void {
  try {
    const state = freezerState({ version, paths: dirs });
    if (state !== "thawed") runCgroupOp(freezerOp({ version, paths: dirs }, false));
  } catch { /* no freezer: nothing can be frozen */ }
}

/**
 * Creates the container's cgroup: `gcr/<id>` under the caller's cgroup, or
 * `options.path` (v1: in each of the memory, cpu, cpuacct and pids
 * hierarchies and those `options.controllers` and the limits need; v2:
 * under the nearest cgroup that may hand out controllers, or at the path)
 * with the limits written. Throws CgroupUnavailableError when limits cannot
 * be had here (rootless without delegation, device rules on v2, …), an
 * Error naming the file and errno otherwise. What was made before a failure
 * is removed again.
 */
export function createContainerCgroup(
  id: string,
  limits: ResourceLimits,
  options: CgroupOptions = {},
): ContainerCgroup {
  const { version, dirs, folders, ops } = planContainerCgroup(id, limits, options);
  const made: string[] = [];
  const created: string[] = [];

  const run = () => {
    for (const op of ops) {
      const didMake = runCgroupOp(op);
      if (op.op === "mkdir" && op.existing === "error") made.push(op.path);
      else if (didMake && op.op === "mkdir" && !folders.includes(op.path)) created.push(op.path);
    }
  };
  try {
    try {
      run();
    } catch (error) {
      // Another gcr removed the shared folder between our mkdirs (it does when
      // it was empty): once more from the start.
      if (!((error as Error).cause instanceof Deno.errors.NotFound) || made.length > 0) throw error;
      run();
    }
  } catch (error) {
    for (const dir of made) _rmdir(dir);
    _removeIfEmpty([...created, ...folders]);
    throw error;
  }
  return _handle(version, dirs, ops, created, folders);
}

/**
 * The cgroup of a container made earlier, by another gcr process (`gcr
 * pause`, `gcr delete`): its folders as `ContainerCgroup.paths` gave them,
 * and the folders above them that were made for it (`created`), which
 * remove() takes away when empty. The version is read from the folders
 * (only v2 folders have cgroup.controllers).
 */
export function openContainerCgroup(
  paths: readonly string[],
  options: { readonly created?: readonly string[] } = {},
): ContainerCgroup {
  if (paths.length === 0) throw new Error("no cgroup folders to open");
  for (const path of paths) {
    if (!path.startsWith("/") || path.split("/").includes("..")) throw new Error(`invalid cgroup folder ${path}`);
  }
  const version = exists(`${paths[0]}/cgroup.controllers`) ? 2 : 1;
  if (version === 2 && paths.length > 1) throw new Error(`a cgroup v2 container has one folder: ${paths.join(", ")}`);
  // The shared gcr folder is removed when empty too, as create's handle does.
  const shared = [...new Set(paths.map((p) => p.slice(0, p.lastIndexOf("/"))))].filter((p) =>
    p.endsWith(`/${GCR_FOLDER}`)
  );
  return _handle(version, paths, [], [...(options.created ?? [])], shared);
}
