/**
 * New limits for a container's existing cgroup (`gcr update`: what
 * `docker update` and the CRI's UpdateContainerResources come to through
 * containerd's runc shim): the writes planned by the same v1LimitOps and
 * v2LimitOps that set the limits when the cgroup was made, from what its
 * folders hold now, then run with the kernel's refusals said plainly.
 *
 * @example
 * ```ts
 * const ops = planCgroupUpdate(ownCgroup(record), resourcesFromOci(json, "update"));
 * runCgroupUpdate(ops, (op) => traceCall(showCgroupOp(op)));
 * ```
 *
 * @module
 */
import { readWords } from "./files.ts";
import { type CgroupHost, CgroupUnavailableError, detectCgroups } from "./hierarchies.ts";
import type { ResourceLimits } from "./limits.ts";
import { type CgroupOp, errorCode, runCgroupOp } from "./ops.ts";
import { checkSwapAccounting, isLimit, v1LimitOps, type V1MemoryNow } from "./v1.ts";
import { v2LimitOps } from "./v2.ts";
import { controllersTouched } from "./version_plan.ts";

/** A container's cgroup as ContainerCgroup (or a record) names it: its version and own folders. */
export interface ExistingCgroup {
  readonly version: 1 | 2;
  readonly paths: readonly string[];
}

/** A number a cgroup file holds (its first word), or undefined. */
function _number(path: string): number | undefined {
  const word = readWords(path)?.[0];
  return word === undefined || !/^-?\d+$/.test(word) ? undefined : Number(word);
}

/** runc's words when the kernel will not shrink a cgroup below what it uses. */
function _belowUsage(bytes: number, usage: number | undefined, peak: number | undefined, cause?: unknown): Error {
  const words = `unable to set memory limit to ${bytes} (current usage: ${usage ?? "?"}, peak usage: ${peak ?? "?"})`;
  return new Error(words, { cause });
}

/**
 * The writes that give an existing cgroup `limits` (an update's: absent is
 * unchanged, -1 lifts a limit). A limit whose controller the container's
 * cgroup lacks, or one the kernel would refuse against what the folder
 * holds now (memory above the memory+swap limit without a new one, swap
 * below the memory limit), is an error before anything is written.
 */
export function planCgroupUpdate(
  cgroup: ExistingCgroup,
  limits: ResourceLimits,
  host: CgroupHost = detectCgroups(),
): CgroupOp[] {
  if (cgroup.version === 2) return _planV2(cgroup.paths[0]!, limits);
  const hierarchies = host.version === 1 ? host.hierarchies : [];
  const folders = cgroup.paths.map((dir) => ({
    dir,
    controllers: hierarchies.find((h) => dir.startsWith(`${h.mount}/`))?.controllers ?? [],
  }));
  const touched = controllersTouched(limits);
  for (const controller of ["memory", "cpu", "pids", "cpuset"] as const) {
    if (touched[controller] && !folders.some((f) => f.controllers.includes(controller))) {
      throw new CgroupUnavailableError(
        `cannot update ${controller}: the container's cgroup is in no ${controller} hierarchy`,
      );
    }
  }
  return folders.flatMap(({ dir, controllers }) => {
    if (!controllers.includes("memory")) return v1LimitOps(dir, controllers, limits);
    const mount = hierarchies.find((h) => h.controllers.includes("memory"))!.mount;
    checkSwapAccounting(mount, limits);
    const now = _v1MemoryNow(dir);
    _checkV1Memory(limits, now);
    return v1LimitOps(dir, controllers, limits, now);
  });
}

function _v1MemoryNow(dir: string): V1MemoryNow {
  const limit = _number(`${dir}/memory.limit_in_bytes`);
  if (limit === undefined) throw new Error(`cannot read ${dir}/memory.limit_in_bytes: is the container still there?`);
  const memsw = _number(`${dir}/memory.memsw.limit_in_bytes`);
  return memsw === undefined ? { limit } : { limit, memsw };
}

/** What the kernel would refuse with a bare EINVAL, said with the numbers. */
function _checkV1Memory(limits: ResourceLimits, now: V1MemoryNow): void {
  const { memoryBytes: memory, memorySwapBytes: swap } = limits;
  if (swap !== undefined && swap !== -1 && memory === undefined && isLimit(now.limit) && swap < now.limit) {
    throw new Error(`memory+swap limit ${swap} is below the container's memory limit ${now.limit}`);
  }
  // Without a new swap, memsw stays (or follows the limit when it was equal to it).
  const keepsMemsw = swap === undefined && memory !== undefined && memory !== -1 && now.memsw !== now.limit;
  if (keepsMemsw && isLimit(now.memsw) && memory > now.memsw) {
    throw new Error(
      `memory limit ${memory} is above the container's memory+swap limit ${now.memsw}: ` +
        "give a memory+swap limit too (--memory-swap)",
    );
  }
}

function _planV2(dir: string, limits: ResourceLimits): CgroupOp[] {
  const memoryMax = readWords(`${dir}/memory.max`)?.[0];
  const [quota, period] = readWords(`${dir}/cpu.max`) ?? [];
  const memory = limits.memoryBytes;
  // v2's kernel reclaims, then OOM-kills, rather than refuse a limit below
  // the usage: runc checks first when asked to, and so does gcr.
  if (limits.memoryCheckBeforeUpdate && memory !== undefined && memory !== -1) {
    const usage = _number(`${dir}/memory.current`);
    if (usage !== undefined && usage > memory) throw _belowUsage(memory, usage, _number(`${dir}/memory.peak`));
  }
  return v2LimitOps(dir, limits, {
    ...(memoryMax !== undefined ? { memoryMax } : {}),
    ...(quota !== undefined && period !== undefined ? { cpuMax: [quota, period] as const } : {}),
  });
}

/**
 * Runs an update's writes in order, `each` called before each (trace). A
 * v1 memory limit below what the container uses is refused by the kernel
 * (EBUSY, after it tried to reclaim): said with the usage, in runc's words.
 */
export function runCgroupUpdate(ops: readonly CgroupOp[], each: (op: CgroupOp) => void = () => {}): void {
  for (const op of ops) {
    each(op);
    try {
      runCgroupOp(op);
    } catch (error) {
      const busy = errorCode((error as Error).cause) === "EBUSY";
      if (!busy || op.op !== "write" || !op.path.endsWith("/memory.limit_in_bytes")) throw error;
      const dir = op.path.slice(0, op.path.lastIndexOf("/"));
      throw _belowUsage(
        Number(op.content),
        _number(`${dir}/memory.usage_in_bytes`),
        _number(`${dir}/memory.max_usage_in_bytes`),
        error,
      );
    }
  }
}
