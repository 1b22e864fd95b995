/**
 * Reads config.json's `process`: the command, its environment, user,
 * capabilities and rlimits ({@link OciProcess}).
 *
 * Its own module because it is the one section read outside a container's
 * creation too: `gcr exec --process` reads its process.json through the
 * same reader (commands/exec.ts), so the process a container is entered with
 * is held to the rules of the one it was started with.
 *
 * @module
 */
import { RLIMIT } from "../../ffi/constants.ts";
import { capabilityNumber } from "../../ffi/capabilities.ts";
import {
  asAbsolutePath,
  asBoolean,
  asCString,
  asString,
  asUint32,
  fail,
  Fields,
  integer,
  item,
  list,
  MAX_SAFE,
  oneOf,
  type Read,
  type Shape,
} from "./fields.ts";

/** setrlimit(2) resources by their config.json names. */
export const RLIMITS = Object.fromEntries(Object.entries(RLIMIT).map(([name, value]) => [`RLIMIT_${name}`, value])) as {
  readonly [K in keyof typeof RLIMIT as `RLIMIT_${K}`]: number;
};

/** RLIM_INFINITY: `(rlim_t)-1`. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

export interface OciProcess {
  readonly terminal: boolean;
  readonly consoleSize?: { readonly height: number; readonly width: number };
  readonly user: OciUser;
  /** Never empty. */
  readonly args: readonly string[];
  /** KEY=VALUE entries, in order. */
  readonly env: readonly string[];
  /** Absolute. */
  readonly cwd: string;
  /** Absent: config.json names no capability sets (runc then leaves the process's own). */
  readonly capabilities?: OciCapabilities;
  readonly rlimits: readonly OciRlimit[];
  readonly noNewPrivileges: boolean;
  /** -1000 to 1000; absent: inherited. */
  readonly oomScoreAdj?: number;
}

export interface OciUser {
  readonly uid: number;
  readonly gid: number;
  readonly umask?: number;
  readonly additionalGids: readonly number[];
}

/** Capability numbers (linux/capability.h), each set in config.json's order, without repeats. */
export interface OciCapabilities {
  readonly bounding: readonly number[];
  readonly effective: readonly number[];
  readonly permitted: readonly number[];
  readonly inheritable: readonly number[];
  readonly ambient: readonly number[];
}

export interface OciRlimit {
  /** `RLIMIT_NOFILE`. */
  readonly type: keyof typeof RLIMITS;
  /** The setrlimit(2) resource number. */
  readonly resource: number;
  /** rlim_t values; {@link RLIM_INFINITY} for unlimited. */
  readonly soft: bigint;
  readonly hard: bigint;
}

const PROCESS: Shape = {
  terminal: "read",
  consoleSize: "read",
  user: "read",
  args: "read",
  env: "read",
  cwd: "read",
  capabilities: "read",
  rlimits: "read",
  noNewPrivileges: "read",
  oomScoreAdj: "read",
  apparmorProfile: "refuse-unless-empty",
  selinuxLabel: "refuse-unless-empty",
  // Windows only.
  commandLine: "refuse",
  scheduler: "refuse",
  ioPriority: "refuse",
  execCPUAffinity: "refuse",
};

const asArgs: Read<string[]> = (value, path) => {
  if (!Array.isArray(value) || value.length === 0 || !value.every((arg) => typeof arg === "string")) {
    fail(path, "must be a non-empty array of strings");
  }
  return value.map((arg, index) => asCString(arg, item(path, index)));
};

/** KEY=VALUE, as runc insists: a variable without `=` or a name has no meaning to execve's callee. */
/** `KEY=VALUE`, as execve takes it (process.env, hooks[].env). */
export const asEnvEntry: Read<string> = (value, path) => {
  const entry = asCString(value, path);
  const equals = entry.indexOf("=");
  if (equals <= 0) fail(path, `must be KEY=VALUE, not ${JSON.stringify(entry)}`);
  return entry;
};

const asUser: Read<OciUser> = (value, path) => {
  // username is Windows-only.
  const user = new Fields(value, path, {
    uid: "read",
    gid: "read",
    umask: "read",
    additionalGids: "read",
    username: "refuse",
  });
  const umask = user.optional("umask", integer(0, 0o777));
  return {
    uid: user.required("uid", asUint32),
    gid: user.required("gid", asUint32),
    ...(umask === undefined ? {} : { umask }),
    additionalGids: user.or("additionalGids", list(asUint32), []),
  };
};

const asCapability: Read<number> = (value, path) => {
  const name = asString(value, path);
  // The spec's names are exactly CAP_*; capabilityNumber alone would also take `net_admin`.
  if (!/^CAP_[A-Z0-9_]+$/.test(name)) {
    fail(path, `must be a capability name like CAP_CHOWN, not ${JSON.stringify(name)}`);
  }
  try {
    return capabilityNumber(name);
  } catch {
    return fail(path, `is not a capability gcr knows: ${JSON.stringify(name)}`);
  }
};

const asCapabilitySet: Read<number[]> = (value, path) => [...new Set(list(asCapability)(value, path))];

const asCapabilities: Read<OciCapabilities> = (value, path) => {
  const caps = new Fields(value, path, {
    bounding: "read",
    effective: "read",
    permitted: "read",
    inheritable: "read",
    ambient: "read",
  });
  return {
    bounding: caps.or("bounding", asCapabilitySet, []),
    effective: caps.or("effective", asCapabilitySet, []),
    permitted: caps.or("permitted", asCapabilitySet, []),
    inheritable: caps.or("inheritable", asCapabilitySet, []),
    ambient: caps.or("ambient", asCapabilitySet, []),
  };
};

/**
 * An rlim_t. RLIM_INFINITY (2^64-1) cannot survive JSON.parse, which rounds
 * it to 2^64; that double, and no other past 2^53, is read as unlimited.
 */
const asRlimValue: Read<bigint> = (value, path) => {
  if (value === 2 ** 64) return RLIM_INFINITY;
  return BigInt(integer(0, MAX_SAFE)(value, path));
};

const asRlimit: Read<OciRlimit> = (value, path) => {
  const limit = new Fields(value, path, { type: "read", soft: "read", hard: "read" });
  const type = limit.required("type", oneOf(Object.keys(RLIMITS) as (keyof typeof RLIMITS)[]));
  const soft = limit.required("soft", asRlimValue);
  const hard = limit.required("hard", asRlimValue);
  // setrlimit would say EINVAL; here the message can name the entry.
  if (soft > hard) fail(path, `has soft ${soft} above hard ${hard}`);
  return { type, resource: RLIMITS[type], soft, hard };
};

const asRlimits: Read<OciRlimit[]> = (value, path) => {
  const limits = list(asRlimit)(value, path);
  const seen = new Set<string>();
  limits.forEach((limit, index) => {
    if (seen.has(limit.type)) fail(item(path, index), `repeats ${limit.type}`);
    seen.add(limit.type);
  });
  return limits;
};

export const asProcess: Read<OciProcess> = (value, path) => {
  const process = new Fields(value, path, PROCESS);
  const consoleSize = process.optional("consoleSize", (size, at) => {
    const box = new Fields(size, at, { height: "read", width: "read" });
    return { height: box.required("height", asUint32), width: box.required("width", asUint32) };
  });
  const capabilities = process.optional("capabilities", asCapabilities);
  const oomScoreAdj = process.optional("oomScoreAdj", integer(-1000, 1000));
  return {
    terminal: process.or("terminal", asBoolean, false),
    ...(consoleSize ? { consoleSize } : {}),
    user: process.required("user", asUser),
    args: asArgs(process.optional("args", (args) => args), process.at("args")),
    env: process.or("env", list(asEnvEntry), []),
    cwd: process.required("cwd", asAbsolutePath),
    ...(capabilities ? { capabilities } : {}),
    rlimits: process.or("rlimits", asRlimits, []),
    noNewPrivileges: process.or("noNewPrivileges", asBoolean, false),
    ...(oomScoreAdj === undefined ? {} : { oomScoreAdj }),
  };
};
