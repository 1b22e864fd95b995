/**
 * Resource limits as the command line gives them, parsed the way Docker
 * parses them: `--memory 64m`, `--cpus 0.5`, `--pids-limit 50`.
 *
 * @example
 * ```ts
 * parseMemory("64m"); // 67108864
 * parseCpus("0.5"); // 0.5
 * parsePidsLimit("-1"); // undefined: unlimited
 * ```
 *
 * @module
 */
import { isObject, isZeroValue } from "../host/json.ts";
import { warn } from "../output/runtime_log.ts";

/**
 * The limits a container's cgroup enforces; an absent field is no limit
 * (for an update: unchanged). The first three are the command line's
 * (`--memory`, `--cpus`, `--pids-limit`); the others come from an OCI
 * config's `linux.resources` (resourcesFromOci). -1 in memoryBytes,
 * memoryReservationBytes or pidsLimit comes only from an update: it lifts
 * the limit the container had.
 */
export interface ResourceLimits {
  /** Bytes of memory (swap included unless memorySwapBytes says otherwise: by default no swap). */
  readonly memoryBytes?: number;
  /** CPUs' worth of time per period, e.g. 0.5 for half of one CPU. Not together with cpuQuotaUs. */
  readonly cpus?: number;
  /** Most processes and threads the container may have at once. */
  readonly pidsLimit?: number;
  /** A soft limit in bytes: v1 memory.soft_limit_in_bytes, v2 memory.low. */
  readonly memoryReservationBytes?: number;
  /**
   * Memory plus swap, in bytes (the runtime spec's `memory.swap`), at least
   * memoryBytes; -1 is unlimited swap. Without swap accounting (v1
   * memory.memsw.*, v2 memory.swap.max) only -1 and memoryBytes can be had.
   */
  readonly memorySwapBytes?: number;
  /** 0-100; cgroup v1 only (v2 has no per-cgroup swappiness). */
  readonly memorySwappiness?: number;
  /** At the memory limit, the container's tasks wait instead of being killed (v1 memory.oom_control; v2 has none). */
  readonly oomKillDisabled?: true;
  /** Relative CPU weight, 2-262144 (v1 cpu.shares; v2 cpu.weight, converted as runc does). */
  readonly cpuShares?: number;
  /** CFS quota in microseconds per period; -1 is none. */
  readonly cpuQuotaUs?: number;
  /** CFS period in microseconds (the kernel's default is 100000). */
  readonly cpuPeriodUs?: number;
  /** CPUs the container may run on, in cpuset list form: `0-2,4`. */
  readonly cpusetCpus?: string;
  /** Memory nodes the container may use, in cpuset list form: `0`. */
  readonly cpusetMems?: string;
  /** Device access rules, applied in order (cgroup v1 devices.allow/devices.deny). */
  readonly devices?: readonly DeviceRule[];
  /**
   * An update only: refuse a memory limit below what the container uses
   * now. v1's kernel refuses it anyway (EBUSY); v2's would reclaim, then
   * OOM-kill, so gcr checks memory.current first, as runc does.
   */
  readonly memoryCheckBeforeUpdate?: true;
}

/**
 * One rule of the device cgroup: `{allow: false, type: "a", access: "rwm"}`
 * denies everything; an absent major or minor is any (`*`).
 */
export interface DeviceRule {
  readonly allow: boolean;
  /** `a` all devices, `c` character, `b` block. */
  readonly type: "a" | "c" | "b";
  readonly major?: number;
  readonly minor?: number;
  /** Some of `r` (read), `w` (write), `m` (mknod). */
  readonly access: string;
}

/** A limit the user wrote that gcr cannot use; the CLI prints the message on one line. */
export class InvalidLimitError extends Error {
  override name = "InvalidLimitError";
}

/** Docker's minimum for `--memory` (a smaller cgroup cannot even start most programs). */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * A memory size as Docker reads it: a number of bytes, or a number with a
 * binary unit `b`, `k`, `m`, `g`, `t`, `p` (any case, optionally followed by
 * `b` or `ib`: `64m`, `64MB`, `1.5g`, `512KiB`). At least `minimum` bytes
 * (`gcr update`'s sizes, runc's, have none).
 */
export function parseMemory(text: string, option = "--memory", minimum = MIN_MEMORY_BYTES): number {
  const match = text.trim().match(/^(\d+(?:\.\d+)?) ?([kmgtp])?(?:i?b)?$/i);
  if (!match) {
    throw new InvalidLimitError(
      `invalid ${option} ${JSON.stringify(text)}: expected a size such as 64m, 1g, 512k or a number of bytes`,
    );
  }
  const bytes = Math.floor(Number(match[1]) * UNITS[(match[2] ?? "").toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw new InvalidLimitError(`invalid ${option} ${JSON.stringify(text)}: too large`);
  if (bytes < minimum) {
    throw new InvalidLimitError(
      `invalid ${option} ${JSON.stringify(text)}: the minimum is 6m (${MIN_MEMORY_BYTES} bytes)`,
    );
  }
  return bytes;
}

/**
 * A number of CPUs, fractional: `0.5` is half of one CPU's time. As Docker,
 * between 0.01 and the number of CPUs of the host (`available`).
 */
export function parseCpus(text: string, available = navigator.hardwareConcurrency): number {
  const cpus = /^\d*\.?\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isFinite(cpus)) {
    throw new InvalidLimitError(`invalid --cpus ${JSON.stringify(text)}: expected a number of CPUs such as 0.5 or 2`);
  }
  if (cpus < 0.01 || cpus > available) {
    throw new InvalidLimitError(
      `invalid --cpus ${JSON.stringify(text)}: the range is 0.01 to ${available}, as there are ${available} CPUs`,
    );
  }
  return cpus;
}

/**
 * A process limit: a positive integer; `0` or `-1` mean unlimited (as
 * Docker), returned as undefined.
 */
export function parsePidsLimit(text: string): number | undefined {
  const limit = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(limit) || limit < -1) {
    throw new InvalidLimitError(
      `invalid --pids-limit ${JSON.stringify(text)}: expected a whole number of processes (-1 for unlimited)`,
    );
  }
  return limit > 0 ? limit : undefined;
}

// ---------------------------------------------------------------------------
// The runtime spec's linux.resources (config-linux.md, "Control groups")

/**
 * Limits from an OCI config's `linux.resources`, as runc reads them: 0 is
 * "not set" for the numbers the spec gives as int64 limits, -1 is
 * unlimited. What gcr does not implement (blockIO, hugepageLimits,
 * network, rdma, unified, realtime CPU, burst, idle) is
 * refused when set, with an InvalidLimitError naming the field
 * (`linux.resources.cpu.burst: …`); kernel memory limits, which this kernel
 * no longer has, are accepted with a warning, as runc does; fields the spec
 * does not define are ignored. This is the one reader of linux.resources:
 * oci/spec/resources.ts reads config.json through it, and `gcr update` the
 * resources an engine sends.
 *
 * For an update (`purpose: "update"`, what `runc update --resources`
 * reads): what is absent or 0 stays as it is, -1 lifts a memory,
 * reservation or pids limit, swap may come without memory (the cgroup's
 * own limit is the other side), and what runc's update leaves alone is
 * ignored, not refused: devices (engines send the container's whole
 * resources, its device rules among them), swappiness, the OOM killer,
 * hierarchy, hugepages, network and rdma.
 *
 * @example
 * ```ts
 * const limits = resourcesFromOci({ memory: { limit: 67108864, swap: 67108864 }, pids: { limit: 100 } });
 * createContainerCgroup(id, limits, { path: "/libpod_parent/libpod-" + id, controllers: ["freezer", "devices"] });
 * ```
 */
export function resourcesFromOci(resources: unknown, purpose: "create" | "update" = "create"): ResourceLimits {
  const update = purpose === "update";
  const at = (where: string) => `linux.resources${where ? `.${where}` : ""}`;
  const fail = (where: string, problem: string) => new InvalidLimitError(`${at(where)}: ${problem}`);
  const object = (value: unknown, where: string): Record<string, unknown> => {
    if (value === undefined || value === null) return {};
    if (!isObject(value)) throw fail(where, "not an object");
    return value;
  };
  const integer = (value: unknown, where: string): number | undefined => {
    if (value === undefined || value === null) return undefined;
    if (!Number.isSafeInteger(value)) throw fail(where, `${JSON.stringify(value)} is not an integer`);
    return value as number;
  };
  /** An int64 limit: 0 and absent are unset, -1 unlimited, other negatives wrong. */
  const limit = (value: unknown, where: string): number | undefined => {
    const n = integer(value, where);
    if (n !== undefined && n < -1) throw fail(where, `${n} (a number of bytes, or -1 for unlimited)`);
    return n === 0 ? undefined : n;
  };
  /** -1 asks a new cgroup for what it has anyway; an update, to lift the limit. */
  const lifted = (n: number | undefined) => (n === -1 && !update ? undefined : n);
  const refuseSet = (value: Record<string, unknown>, where: string, fields: readonly string[], why: string) => {
    for (const field of fields) {
      const v = value[field];
      if (!isZeroValue(v)) throw fail(_join(where, field), `not supported: ${why}`);
    }
  };

  const top = object(resources, "");
  const unsupported = update ? ["blockIO", "unified"] : ["blockIO", "hugepageLimits", "network", "rdma", "unified"];
  refuseSet(top, "", unsupported, "gcr does not set this controller");
  const result: { -readonly [K in keyof ResourceLimits]: ResourceLimits[K] } = {};

  const memory = object(top.memory, "memory");
  if (!update && memory.disableOOMKiller !== undefined && memory.disableOOMKiller !== null) {
    if (typeof memory.disableOOMKiller !== "boolean") throw fail("memory.disableOOMKiller", "not true or false");
    if (memory.disableOOMKiller) result.oomKillDisabled = true;
  }
  // Kernel memory limits are gone from the kernel (5.16) and cgroup v2 never
  // had them: runc accepts them with a warning, and so does gcr. -1
  // ("unlimited") is what every container gets anyway.
  for (const field of ["kernel", "kernelTCP"]) {
    const bytes = limit(memory[field], `memory.${field}`);
    if (bytes !== undefined && bytes !== -1) {
      warn(
        `${at(`memory.${field}`)}: ${bytes} ignored: this kernel has no kernel memory limits (gone since Linux 5.16)`,
      );
    }
  }
  // Hierarchical accounting is all the kernel has done since 5.x (v1 refuses
  // to turn it off, v2 has no switch): true asks for what every cgroup gets.
  if (!update && memory.useHierarchy === false) {
    throw fail("memory.useHierarchy", "not supported: the kernel accounts memory hierarchically");
  }
  if (update && memory.checkBeforeUpdate !== undefined && memory.checkBeforeUpdate !== null) {
    if (typeof memory.checkBeforeUpdate !== "boolean") throw fail("memory.checkBeforeUpdate", "not true or false");
    if (memory.checkBeforeUpdate) result.memoryCheckBeforeUpdate = true;
  }
  const memoryLimit = lifted(limit(memory.limit, "memory.limit"));
  if (memoryLimit !== undefined) result.memoryBytes = memoryLimit;
  const reservation = lifted(limit(memory.reservation, "memory.reservation"));
  if (reservation !== undefined) result.memoryReservationBytes = reservation;
  const swap = limit(memory.swap, "memory.swap");
  if (swap !== undefined) {
    const bytes = result.memoryBytes;
    if (swap !== -1 && bytes === undefined && !update) throw fail("memory.swap", "it needs memory.limit too");
    if (swap !== -1 && bytes !== undefined && bytes !== -1 && swap < bytes) {
      throw fail("memory.swap", `${swap} is below memory.limit ${bytes} (swap counts memory plus swap)`);
    }
    result.memorySwapBytes = swap;
  }
  const swappiness = integer(memory.swappiness, "memory.swappiness");
  // runc reads -1 (what some callers send for "unset") as unset.
  if (!update && swappiness !== undefined && swappiness !== -1) {
    if (swappiness < 0 || swappiness > 100) throw fail("memory.swappiness", `${swappiness} (0-100)`);
    result.memorySwappiness = swappiness;
  }

  const cpu = object(top.cpu, "cpu");
  refuseSet(cpu, "cpu", ["burst", "realtimeRuntime", "realtimePeriod", "idle"], "gcr sets shares, quota and cpusets");
  const shares = limit(cpu.shares, "cpu.shares");
  if (shares !== undefined) {
    if (shares < 2 || shares > 262144) throw fail("cpu.shares", `${shares} (2-262144)`);
    result.cpuShares = shares;
  }
  const quota = limit(cpu.quota, "cpu.quota");
  if (quota !== undefined) {
    if (quota !== -1 && quota < 1000) throw fail("cpu.quota", `${quota} µs (at least 1000, or -1 for none)`);
    result.cpuQuotaUs = quota;
  }
  const period = limit(cpu.period, "cpu.period");
  if (period !== undefined) {
    if (period < 1000 || period > 1_000_000) throw fail("cpu.period", `${period} µs (1000-1000000)`);
    result.cpuPeriodUs = period;
  }
  for (const [field, key] of [["cpus", "cpusetCpus"], ["mems", "cpusetMems"]] as const) {
    const list = cpu[field];
    if (list === undefined || list === null || list === "") continue;
    if (typeof list !== "string" || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) {
      throw fail(`cpu.${field}`, `${JSON.stringify(list)} is not a list such as 0-2,4`);
    }
    result[key] = list;
  }

  const pids = object(top.pids, "pids");
  if (!update && top.pids !== undefined && top.pids !== null && pids.limit === undefined) {
    throw fail("pids.limit", "missing");
  }
  const pidsLimit = integer(pids.limit, "pids.limit");
  if (pidsLimit !== undefined && (pidsLimit > 0 || (update && pidsLimit < 0))) {
    result.pidsLimit = Math.max(pidsLimit, -1);
  }

  // runc's update cannot change device rules; the create's stay.
  const devices = update ? [] : top.devices ?? [];
  if (!Array.isArray(devices)) throw fail("devices", "not an array");
  result.devices = devices.map((entry, i): DeviceRule => {
    const where = `devices[${i}]`;
    const rule = object(entry, where);
    if (typeof rule.allow !== "boolean") throw fail(`${where}.allow`, "missing or not a boolean");
    const type = rule.type ?? "a";
    if (type !== "a" && type !== "c" && type !== "b") {
      throw fail(`${where}.type`, `${JSON.stringify(type)} (a, c or b)`);
    }
    const number = (field: "major" | "minor") => {
      const n = integer(rule[field], `${where}.${field}`);
      if (n !== undefined && n < -1) throw fail(`${where}.${field}`, `${n} (a device number, or -1 for any)`);
      return n === undefined || n === -1 ? {} : { [field]: n };
    };
    const access = rule.access ?? "rwm";
    if (typeof access !== "string" || !/^(?!.*(.).*\1)[rwm]+$/.test(access)) {
      throw fail(`${where}.access`, `${JSON.stringify(access)} (some of r, w, m)`);
    }
    return { allow: rule.allow, type, ...number("major"), ...number("minor"), access };
  });
  if (result.devices.length === 0) delete result.devices;
  return result;
}

const _join = (where: string, key: string) => (where ? `${where}.${key}` : key);
