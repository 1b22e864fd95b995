/**
 * A container's cgroup, behind one interface whatever the host mounts:
 * cgroup v2 (one unified hierarchy, the default of modern distributions) or
 * cgroup v1 (one hierarchy per controller, as on this project's VM, where
 * memory, cpu, cpuacct and pids are v1 and /sys/fs/cgroup/unified is a
 * cgroup2 mount with hugetlb only).
 *
 * Creating a cgroup is a plan first (plan.ts: plain ops, mkdir and write),
 * then the plan run: `--trace` and `explain` show the same ops gcr performs.
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
import { readWords } from "./files.ts";
import { CgroupUnavailableError } from "./hierarchies.ts";
import type { ResourceLimits } from "./limits.ts";
import { type CgroupOp, runCgroupOp } from "./ops.ts";
import { planContainerCgroup } from "./plan.ts";
import type { CgroupOptions } from "./version_plan.ts";
import { checkCgroupFolders, gcrParents, removeIfEmpty, rmdirCgroup } from "./remove.ts";
import { sleep } from "../host/time.ts";

import { exists } from "../host/files.ts";
import { sendSignal } from "../ffi/signal.ts";
import { SIGNALS } from "../ffi/constants.ts";
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
        // A cgroup is empty for rmdir once its processes have exited, even
        // unreaped: the usual case (delete of a stopped container) is one
        // rmdir per hierarchy, and only one that is busy is read for pids.
        const busy = dirs.filter((dir) => rmdirCgroup(dir) === "busy");
        if (busy.length === 0) break;
        const left = busy.flatMap(_pids);
        for (const pid of new Set(left)) {
          try {
            sendSignal(pid, SIGNALS.SIGKILL); // false: exited meanwhile
          } catch { /* the next rmdir reports what is left */ }
        }
        // A frozen process cannot act on SIGKILL (v1 does not even let it
        // die): thaw after the signal is queued, so nothing runs in between.
        if (round === 0 && left.length > 0) _thawIfFrozen(version, busy);
        if (performance.now() > deadline) {
          throw new Error(`cannot remove cgroup ${busy.join(", ")}: still has processes ${left.join(" ")}`);
        }
        await sleep(round === 0 ? 1 : 10);
      }
      // Folders made for it go when empty: another container may be below them.
      removeIfEmpty([...created, ...shared]);
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
 * is removed again. `beforeMaking` gets the container's folders before the
 * first is made (callers record them, so that a gcr killed meanwhile leaves
 * folders that rm, prune and delete find).
 */
export function createContainerCgroup(
  id: string,
  limits: ResourceLimits,
  options: CgroupOptions = {},
  beforeMaking?: (dirs: string[]) => void,
): ContainerCgroup {
  const { version, dirs, folders, ops } = planContainerCgroup(id, limits, options);
  beforeMaking?.(dirs);
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
    for (const dir of made) rmdirCgroup(dir);
    removeIfEmpty([...created, ...folders]);
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
  checkCgroupFolders(paths);
  const version = exists(`${paths[0]}/cgroup.controllers`) ? 2 : 1;
  if (version === 2 && paths.length > 1) throw new Error(`a cgroup v2 container has one folder: ${paths.join(", ")}`);
  // The shared gcr folder is removed when empty too, as create's handle does.
  return _handle(version, paths, [], [...(options.created ?? [])], gcrParents(paths));
}
