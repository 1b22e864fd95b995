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
import type { ResourceLimits } from "./limits.ts";

export { InvalidLimitError, parseCpus, parseMemory, parsePidsLimit, type ResourceLimits } from "./limits.ts";

/** The folder under the caller's cgroup that holds gcr's containers. */
export const GCR_FOLDER = "gcr";
/** The CFS period gcr uses for `--cpus`, as Docker: 100 ms. */
export const CPU_PERIOD_US = 100_000;
/** The v1 controllers whose hierarchies a container joins (cpuacct for the CPU usage it reports). */
const V1_CONTROLLERS = ["memory", "cpu", "cpuacct", "pids"] as const;

/** One cgroup v1 hierarchy as mounted, with the caller's cgroup in it. */
export interface V1Hierarchy {
  /** Controllers bound to it, e.g. `["cpu", "cpuacct"]` or `["name=systemd"]`. */
  readonly controllers: readonly string[];
  /** Where it is mounted, e.g. `/sys/fs/cgroup/memory`. */
  readonly mount: string;
  /** The caller's cgroup, as a folder: mount point + the path from /proc/self/cgroup. */
  readonly dir: string;
}

/** A cgroup v2 (unified) hierarchy as mounted, with the caller's cgroup in it. */
export interface V2Hierarchy {
  readonly version: 2;
  readonly mount: string;
  /** The caller's cgroup, as a folder. */
  readonly dir: string;
}

/** What the host mounts: v2 alone, or v1 hierarchies (hybrid: with a v2 one beside them). */
export type CgroupHost =
  | V2Hierarchy
  | { readonly version: 1; readonly hierarchies: readonly V1Hierarchy[]; readonly unified?: V2Hierarchy };

/** Limits cannot be set up here; the message says why and what would allow them. */
export class CgroupUnavailableError extends Error {
  override name = "CgroupUnavailableError";
}

/** One thing gcr does to the cgroup file system; a plan is a list of these. */
export type CgroupOp =
  /** `existing: "ok"` for the shared `gcr` folder; a container's own folder must be new. */
  | { readonly op: "mkdir"; readonly path: string; readonly existing: "ok" | "error" }
  /** `ifPresent`: a file the kernel offers only with some options (swap accounting). */
  | { readonly op: "write"; readonly path: string; readonly content: string; readonly ifPresent?: boolean };

/** How an op is shown in trace and explain: `write /sys/…/memory.limit_in_bytes: 67108864`. */
export function showCgroupOp(op: CgroupOp): string {
  switch (op.op) {
    case "mkdir":
      return `mkdir ${op.path}${op.existing === "ok" ? " (if missing)" : ""}`;
    case "write":
      return `write ${op.path}: ${op.content}${op.ifPresent ? " (if the kernel offers it)" : ""}`;
  }
}

/** A container's cgroup, made by createContainerCgroup. */
export interface ContainerCgroup {
  readonly version: 1 | 2;
  /** The container's cgroup folders: one on v2, one per hierarchy on v1. */
  readonly paths: readonly string[];
  /** What was done to make it (the ops `explain` and `--trace` show). */
  readonly ops: readonly CgroupOp[];
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
// Detection

interface Mount {
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function _unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function _parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (separator < 6) continue;
    mounts.push({
      root: _unescape(fields[3]!),
      mountPoint: _unescape(fields[4]!),
      fsType: fields[separator + 1] ?? "",
      superOptions: (fields[separator + 3] ?? "").split(","),
    });
  }
  return mounts;
}

/** `/proc/self/cgroup`: hierarchy id → (controllers, path); v2 is `0::/path`. */
function _parseProcCgroup(text: string): { controllers: string[]; path: string }[] {
  return text.split("\n").filter((line) => line.trim()).map((line) => {
    const [, controllers = "", ...path] = line.split(":");
    return { controllers: controllers ? controllers.split(",") : [], path: path.join(":") };
  });
}

/**
 * The caller's cgroup as a folder: the mount shows the hierarchy from
 * `root`, so the path from /proc/self/cgroup is taken relative to it.
 * Undefined when the caller's cgroup is outside what the mount shows.
 */
function _cgroupDir(mount: Mount, path: string): string | undefined {
  const root = mount.root === "/" ? "" : mount.root;
  if (path !== root && !path.startsWith(root + "/")) return undefined;
  const relative = path.slice(root.length).replace(/^\/+/, "");
  return relative ? `${mount.mountPoint}/${relative}` : mount.mountPoint;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/**
 * What the host mounts, from /proc/self/mountinfo and /proc/self/cgroup
 * (pass their text to detect another host's layout). v1 wins when a v1
 * hierarchy holds one of the controllers gcr uses (hybrid hosts); v2
 * otherwise.
 */
export function detectCgroups(
  mountinfo = Deno.readTextFileSync("/proc/self/mountinfo"),
  procCgroup = Deno.readTextFileSync("/proc/self/cgroup"),
): CgroupHost {
  const mounts = _parseMountinfo(mountinfo);
  const memberships = _parseProcCgroup(procCgroup);
  const v2Path = memberships.find((m) => m.controllers.length === 0)?.path;
  let unified: V2Hierarchy | undefined;
  const hierarchies: V1Hierarchy[] = [];
  for (const mount of mounts) {
    if (mount.fsType === "cgroup2" && !unified && v2Path !== undefined) {
      const dir = _cgroupDir(mount, v2Path);
      if (dir) unified = { version: 2, mount: mount.mountPoint, dir };
    } else if (mount.fsType === "cgroup") {
      const membership = memberships.find((m) =>
        m.controllers.length > 0 && m.controllers.every((c) => mount.superOptions.includes(c))
      );
      if (!membership || hierarchies.some((h) => sameSet(h.controllers, membership.controllers))) continue;
      const dir = _cgroupDir(mount, membership.path);
      if (dir) hierarchies.push({ controllers: membership.controllers, mount: mount.mountPoint, dir });
    }
  }
  const usesV1 = hierarchies.some((h) => h.controllers.some((c) => (V1_CONTROLLERS as readonly string[]).includes(c)));
  if (usesV1 || !unified) return unified ? { version: 1, hierarchies, unified } : { version: 1, hierarchies };
  return unified;
}

// ---------------------------------------------------------------------------
// Plans

/** The v2 controllers a set of limits needs. */
function _v2Controllers(limits: ResourceLimits): string[] {
  return [
    ...(limits.memoryBytes !== undefined ? ["memory"] : []),
    ...(limits.cpus !== undefined ? ["cpu"] : []),
    ...(limits.pidsLimit !== undefined ? ["pids"] : []),
  ];
}

const cpuQuotaUs = (cpus: number) => Math.max(1000, Math.round(cpus * CPU_PERIOD_US));

function _readWords(path: string): string[] | undefined {
  try {
    return Deno.readTextFileSync(path).trim().split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
}

function _hasProcesses(dir: string): boolean {
  return (_readWords(`${dir}/cgroup.procs`) ?? []).length > 0;
}

function _ownedBy(path: string, uid: number): boolean {
  try {
    return Deno.statSync(path).uid === uid;
  } catch {
    return false;
  }
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
  const missing = (dir: string) => needed.filter((c) => !(_readWords(`${dir}/cgroup.controllers`) ?? []).includes(c));
  const reasons: string[] = [];
  for (let dir = host.dir;; dir = dir.slice(0, dir.lastIndexOf("/"))) {
    if (rootless && !["", "/cgroup.procs", "/cgroup.subtree_control"].every((f) => _ownedBy(dir + f, uid))) {
      reasons.push(`${dir} is not delegated to uid ${uid} (it and its cgroup.procs must be owned by the user)`);
      break;
    }
    const enabled = _readWords(`${dir}/cgroup.subtree_control`) ?? [];
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

function _v2Plan(host: V2Hierarchy, id: string, limits: ResourceLimits, extra: readonly string[], uid: number) {
  const needed = [...new Set([..._v2Controllers(limits), ...extra])];
  const base = _v2Base(host, needed, uid);
  const folder = `${base}/${GCR_FOLDER}`;
  const dir = `${folder}/${id}`;
  const enabledInBase = _readWords(`${base}/cgroup.subtree_control`) ?? [];
  const toEnable = needed.filter((c) => !enabledInBase.includes(c));
  const enable = (path: string, controllers: readonly string[]): CgroupOp[] =>
    controllers.length ? [{ op: "write", path, content: controllers.map((c) => `+${c}`).join(" ") }] : [];
  const ops: CgroupOp[] = [
    ...enable(`${base}/cgroup.subtree_control`, toEnable),
    { op: "mkdir", path: folder, existing: "ok" },
    // The gcr folder never holds processes, so it may always hand controllers on.
    ...enable(`${folder}/cgroup.subtree_control`, needed),
    { op: "mkdir", path: dir, existing: "error" },
  ];
  if (limits.memoryBytes !== undefined) {
    ops.push({ op: "write", path: `${dir}/memory.max`, content: String(limits.memoryBytes) });
    // No swap: the limit bounds all of the container's memory (Docker would allow as much swap again).
    ops.push({ op: "write", path: `${dir}/memory.swap.max`, content: "0", ifPresent: true });
  }
  if (limits.cpus !== undefined) {
    ops.push({ op: "write", path: `${dir}/cpu.max`, content: `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}` });
  }
  if (limits.pidsLimit !== undefined) {
    ops.push({ op: "write", path: `${dir}/pids.max`, content: String(limits.pidsLimit) });
  }
  return { dirs: [dir], folders: [folder], ops };
}

function _v1Plan(hierarchies: readonly V1Hierarchy[], id: string, limits: ResourceLimits, uid: number) {
  const used = hierarchies.filter((h) => h.controllers.some((c) => (V1_CONTROLLERS as readonly string[]).includes(c)));
  const need = (controller: string, wanted: boolean) => {
    if (wanted && !used.some((h) => h.controllers.includes(controller))) {
      throw new CgroupUnavailableError(`cannot limit ${controller}: no cgroup v1 hierarchy has that controller`);
    }
  };
  need("memory", limits.memoryBytes !== undefined);
  need("cpu", limits.cpus !== undefined);
  need("pids", limits.pidsLimit !== undefined);
  if (uid !== 0) {
    const notOwned = used.find((h) => !_ownedBy(h.dir, uid));
    if (notOwned) {
      throw new CgroupUnavailableError(
        `resource limits need root or a delegated cgroup v2: this host uses cgroup v1, and ${notOwned.dir} is not the user's`,
      );
    }
  }
  const ops: CgroupOp[] = [];
  const dirs: string[] = [];
  const folders: string[] = [];
  for (const h of used) {
    const folder = `${h.dir}/${GCR_FOLDER}`;
    const dir = `${folder}/${id}`;
    folders.push(folder);
    dirs.push(dir);
    ops.push({ op: "mkdir", path: folder, existing: "ok" }, { op: "mkdir", path: dir, existing: "error" });
    if (h.controllers.includes("memory") && limits.memoryBytes !== undefined) {
      // limit_in_bytes first: the kernel refuses a memsw limit below it.
      ops.push({ op: "write", path: `${dir}/memory.limit_in_bytes`, content: String(limits.memoryBytes) });
      ops.push({
        op: "write",
        path: `${dir}/memory.memsw.limit_in_bytes`,
        content: String(limits.memoryBytes),
        ifPresent: true,
      });
    }
    if (h.controllers.includes("cpu") && limits.cpus !== undefined) {
      ops.push({ op: "write", path: `${dir}/cpu.cfs_period_us`, content: String(CPU_PERIOD_US) });
      ops.push({ op: "write", path: `${dir}/cpu.cfs_quota_us`, content: String(cpuQuotaUs(limits.cpus)) });
    }
    if (h.controllers.includes("pids") && limits.pidsLimit !== undefined) {
      ops.push({ op: "write", path: `${dir}/pids.max`, content: String(limits.pidsLimit) });
    }
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
  if (uid !== 0 && host.unified && _ownedBy(host.unified.dir, uid)) return host.unified;
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
  const uid = options.uid ?? Deno.uid() ?? 0;
  const chosen = _choose(options);
  return chosen.version === 2
    ? { version: 2, ..._v2Plan(chosen, id, limits, options.v2Controllers ?? [], uid) }
    : { version: 1, ..._v1Plan(chosen.hierarchies, id, limits, uid) };
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

function _errorCode(error: unknown): string {
  return (error as { code?: string }).code ?? (error as Error).message;
}

/** Runs one op; errors name the file, the content and the errno, as the runner's do. */
export function runCgroupOp(op: CgroupOp): void {
  switch (op.op) {
    case "mkdir":
      try {
        Deno.mkdirSync(op.path, { mode: 0o755 });
      } catch (error) {
        if (op.existing === "ok" && error instanceof Deno.errors.AlreadyExists) return;
        throw new Error(`mkdir ${op.path}: ${_errorCode(error)}`, { cause: error });
      }
      return;
    case "write":
      try {
        Deno.writeTextFileSync(op.path, op.content, { create: false });
      } catch (error) {
        if (op.ifPresent && error instanceof Deno.errors.NotFound) return;
        throw new Error(`write ${op.path} ${JSON.stringify(op.content)}: ${_errorCode(error)}`, { cause: error });
      }
      return;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The pids in a cgroup folder; an absent folder is empty. */
function _pids(dir: string): number[] {
  return (_readWords(`${dir}/cgroup.procs`) ?? []).map(Number);
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
    throw new Error(`rmdir ${dir}: ${_errorCode(error)}`, { cause: error });
  }
}

/**
 * Creates the container's cgroup: `gcr/<id>` under the caller's cgroup (v1:
 * in each of the memory, cpu, cpuacct and pids hierarchies; v2: under the
 * nearest cgroup that may hand out controllers) with the limits written.
 * Throws CgroupUnavailableError when limits cannot be had here (rootless
 * without delegation), an Error naming the file and errno otherwise. What
 * was made before a failure is removed again.
 */
export function createContainerCgroup(
  id: string,
  limits: ResourceLimits,
  options: CgroupOptions = {},
): ContainerCgroup {
  const plan = planContainerCgroup(id, limits, options);
  const { version, dirs, folders, ops } = plan;
  const made: string[] = [];

  const cgroup: ContainerCgroup = {
    version,
    paths: dirs,
    ops,
    addProcessOps: (pid) => dirs.map((dir) => ({ op: "write", path: `${dir}/cgroup.procs`, content: String(pid) })),
    addProcess(pid) {
      for (const op of cgroup.addProcessOps(pid)) runCgroupOp(op);
    },
    wasOomKilled(signal) {
      if (version === 2) return (_counter(`${dirs[0]}/memory.events`, "oom_kill") ?? 0) > 0;
      const memory = dirs.find((dir) => {
        try {
          Deno.statSync(`${dir}/memory.oom_control`);
          return true;
        } catch {
          return false;
        }
      });
      if (!memory) return false;
      const kills = _counter(`${memory}/memory.oom_control`, "oom_kill");
      if (kills !== undefined) return kills > 0;
      // Kernels before 4.13 have no oom_kill counter: a SIGKILL after the limit was hit.
      return signal === 9 && Number(_readWords(`${memory}/memory.failcnt`)?.[0] ?? 0) > 0;
    },
    cpuUsageUs() {
      if (version === 2) return _counter(`${dirs[0]}/cpu.stat`, "usage_usec") ?? 0;
      for (const dir of dirs) {
        const ns = _readWords(`${dir}/cpuacct.usage`)?.[0];
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
      for (;;) {
        const left = dirs.flatMap(_pids);
        for (const pid of new Set(left)) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* exited meanwhile */ }
        }
        // A cgroup is empty for rmdir once its processes have exited, even unreaped.
        const busy = left.length > 0 ? dirs : dirs.filter((dir) => _rmdir(dir) === "busy");
        if (busy.length === 0) break;
        if (performance.now() > deadline) {
          throw new Error(`cannot remove cgroup ${busy.join(", ")}: still has processes ${left.join(" ")}`);
        }
        await sleep(10);
      }
      // The shared folder goes when it is empty; another container may still use it.
      for (const folder of folders) {
        try {
          Deno.removeSync(folder);
        } catch { /* in use, or already gone */ }
      }
    },
  };

  const run = () => {
    for (const op of ops) {
      runCgroupOp(op);
      if (op.op === "mkdir" && op.existing === "error") made.push(op.path);
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
    for (const folder of folders) {
      try {
        Deno.removeSync(folder);
      } catch { /* in use */ }
    }
    throw error;
  }
  return cgroup;
}
