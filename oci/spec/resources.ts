/**
 * Reads `linux.resources`: memory, cpu and pids limits and the device cgroup
 * rules ({@link OciResources}).
 *
 * Its own module because its refusals are about cgroups, not the rest of
 * `linux`: the controllers and cgroup v1 knobs gcr does not drive (blockIO,
 * hugepages, rdma, kernel memory, …) are taken only at their zero value, so
 * a config that asks for them fails here, before any setup. The cgroup is
 * made from the same object by cgroup/limits.ts (resourcesFromOci).
 *
 * @module
 */
import {
  asBoolean,
  asInt64,
  asString,
  asUint64,
  fail,
  Fields,
  integer,
  list,
  MAX_SAFE,
  oneOf,
  optionalEntry,
  type Read,
} from "./fields.ts";

export interface OciResources {
  /** Bytes; -1: unlimited. */
  readonly memory?: {
    readonly limit?: number;
    readonly reservation?: number;
    /** Memory plus swap, in bytes (cgroup v1's memsw); -1: unlimited. */
    readonly swap?: number;
    readonly swappiness?: number;
  };
  readonly cpu?: {
    readonly shares?: number;
    /** Microseconds per period; -1: unlimited. */
    readonly quota?: number;
    readonly period?: number;
    readonly cpus?: string;
    readonly mems?: string;
  };
  /** 0 or less: unlimited (as runc reads it). */
  readonly pids?: { readonly limit: number };
  /** Device cgroup rules, in order: the last that matches decides. */
  readonly devices: readonly OciDeviceRule[];
}

export interface OciDeviceRule {
  readonly allow: boolean;
  /** `a`: every device. */
  readonly type: "a" | "b" | "c";
  /** Absent: any. */
  readonly major?: number;
  readonly minor?: number;
  /** Some of `rwm`. */
  readonly access: string;
}

const asDeviceRule: Read<OciDeviceRule> = (value, path) => {
  const rule = new Fields(value, path, { allow: "read", type: "read", major: "read", minor: "read", access: "read" });
  const access = rule.or("access", asString, "rwm");
  if (!/^[rwm]*$/.test(access)) fail(rule.at("access"), `must be made of r, w and m, not ${JSON.stringify(access)}`);
  // -1 is how runc's Go structs (and some generators) write "any".
  const number = (key: string) => {
    const value = rule.optional(key, integer(-1, MAX_SAFE));
    return value === -1 ? undefined : value;
  };
  return {
    allow: rule.required("allow", asBoolean),
    type: rule.or("type", oneOf(["a", "b", "c"] as const), "a"),
    ...optionalEntry("major", number("major")),
    ...optionalEntry("minor", number("minor")),
    access,
  };
};

export const asResources: Read<OciResources> = (value, path) => {
  const resources = new Fields(value, path, {
    memory: "read",
    cpu: "read",
    pids: "read",
    devices: "read",
    blockIO: "refuse-unless-empty",
    hugepageLimits: "refuse-unless-empty",
    network: "refuse-unless-empty",
    rdma: "refuse-unless-empty",
    unified: "refuse-unless-empty",
  });
  const memory = resources.optional("memory", (entry, at) => {
    // kernel and kernelTCP are cgroup v1's kmem limits, gone from the kernel since 6.x.
    const fields = new Fields(entry, at, {
      limit: "read",
      reservation: "read",
      swap: "read",
      swappiness: "read",
      kernel: "refuse-unless-empty",
      kernelTCP: "refuse-unless-empty",
      disableOOMKiller: "refuse-unless-empty",
      useHierarchy: "refuse-unless-empty",
      checkBeforeUpdate: "refuse-unless-empty",
    });
    return {
      ...optionalEntry("limit", fields.optional("limit", integer(-1, MAX_SAFE))),
      ...optionalEntry("reservation", fields.optional("reservation", integer(-1, MAX_SAFE))),
      ...optionalEntry("swap", fields.optional("swap", integer(-1, MAX_SAFE))),
      ...optionalEntry("swappiness", fields.optional("swappiness", integer(0, 100))),
    };
  });
  const cpu = resources.optional("cpu", (entry, at) => {
    const fields = new Fields(entry, at, {
      shares: "read",
      quota: "read",
      period: "read",
      cpus: "read",
      mems: "read",
      realtimeRuntime: "refuse-unless-empty",
      realtimePeriod: "refuse-unless-empty",
      burst: "refuse-unless-empty",
      idle: "refuse-unless-empty",
    });
    return {
      ...optionalEntry("shares", fields.optional("shares", asUint64)),
      ...optionalEntry("quota", fields.optional("quota", integer(-1, MAX_SAFE))),
      ...optionalEntry("period", fields.optional("period", asUint64)),
      ...optionalEntry("cpus", fields.optional("cpus", asString)),
      ...optionalEntry("mems", fields.optional("mems", asString)),
    };
  });
  const pids = resources.optional("pids", (entry, at) => ({
    limit: new Fields(entry, at, { limit: "read" }).required("limit", asInt64),
  }));
  return {
    ...(memory ? { memory } : {}),
    ...(cpu ? { cpu } : {}),
    ...(pids ? { pids } : {}),
    devices: resources.or("devices", list(asDeviceRule), []),
  };
};
