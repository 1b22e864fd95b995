/**
 * Reads an OCI runtime-spec bundle's `config.json` (runtime-spec 1.0 to 1.2)
 * into typed, checked values that gcr's planner turns into its own plan.
 *
 * Every object is read against an explicit list of the fields gcr knows. A
 * field gcr cannot honour is refused with a {@link SpecError} naming it,
 * never dropped: a container that silently lacks a limit or a hook its
 * author asked for is worse than one that does not start.
 *
 * ```ts
 * const spec = readSpec("/var/lib/bundles/web");
 * spec.process.args; // ["nginx", "-g", "daemon off;"]
 * spec.mounts[0]?.flags; // MS.NOSUID | MS.NODEV | MS.NOEXEC
 * ```
 *
 * @module
 */
import { resolvePath } from "../../host/files.ts";
import { CLONE, MS, RLIMIT } from "../../ffi/constants.ts";
import { capabilityNumber } from "../../security/capabilities.ts";
import type { IdMapping } from "../../steps/step.ts";

// ---------------------------------------------------------------------------

/** setrlimit(2) resources by their config.json names. */
export const RLIMITS = Object.fromEntries(Object.entries(RLIMIT).map(([name, value]) => [`RLIMIT_${name}`, value])) as {
  readonly [K in keyof typeof RLIMIT as `RLIMIT_${K}`]: number;
};

/** RLIM_INFINITY: `(rlim_t)-1`. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

// ---------------------------------------------------------------------------
// What parseSpec returns

/** A config.json that does not describe a container gcr can run as asked. */
export class SpecError extends Error {
  override name = "SpecError";
  /** The field at fault, as a path (`linux.resources.memory.kernel`, `mounts[2].options[0]`); "" for the file itself. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

export interface OciSpec {
  readonly ociVersion: string;
  /** The bundle folder, absolute. */
  readonly bundle: string;
  /** `path` is absolute: a relative one in config.json is relative to the bundle. */
  readonly root: { readonly path: string; readonly readonly: boolean };
  /** Absent: the spec leaves the UTS namespace's name alone. */
  readonly hostname?: string;
  readonly domainname?: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly process: OciProcess;
  /** In config.json's order, which is the order they must be mounted in. */
  readonly mounts: readonly OciMount[];
  readonly linux: OciLinux;
}

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

/** One `mounts` entry, its options parsed as runc's specconv parses them. */
export interface OciMount {
  /** Absolute, inside the container. */
  readonly destination: string;
  /** The file system type; "bind" for every bind mount, whatever config.json said. */
  readonly type: string;
  /** For a bind mount, an absolute host path (a relative one is relative to the bundle); otherwise the device or label, maybe "". */
  readonly source: string;
  /** MS_* flags for the mount call (MS_BIND, MS_REC with rbind, MS_RDONLY, …); no propagation flags. */
  readonly flags: number;
  /** MS_PRIVATE, MS_SHARED, MS_SLAVE or MS_UNBINDABLE, maybe with MS_REC, for a second mount call; 0: none asked. */
  readonly propagation: number;
  /** The options that are not flags, joined with "," for mount(2)'s data argument. */
  readonly data: string;
  readonly bind: boolean;
  /** rbind: the mounts under the source come too. */
  readonly recursive: boolean;
  readonly readOnly: boolean;
  /** `tmpcopyup`: a tmpfs that starts with the image's files at its mount point (see oci/plan.ts). */
  readonly copyUp?: boolean;
}

export type NamespaceType = "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup";

/** The clone(2)/unshare(2) flag of each namespace type gcr can make. */
export const NAMESPACE_FLAGS: Readonly<Record<NamespaceType, number>> = {
  pid: CLONE.NEWPID,
  network: CLONE.NEWNET,
  mount: CLONE.NEWNS,
  ipc: CLONE.NEWIPC,
  uts: CLONE.NEWUTS,
  user: CLONE.NEWUSER,
  cgroup: CLONE.NEWCGROUP,
};

export interface OciNamespace {
  readonly type: NamespaceType;
  readonly flag: number;
  /** Join this namespace (a /proc/<pid>/ns/<type> or bind-mounted file) instead of making a new one. */
  readonly path?: string;
}

export interface OciLinux {
  /** Each type at most once. No entry for a type: the container shares the host's. */
  readonly namespaces: readonly OciNamespace[];
  readonly uidMappings: readonly IdMapping[];
  readonly gidMappings: readonly IdMapping[];
  readonly sysctl: Readonly<Record<string, string>>;
  readonly resources?: OciResources;
  readonly cgroupsPath?: string;
  readonly maskedPaths: readonly string[];
  readonly readonlyPaths: readonly string[];
  /** Shape-checked only; security/ turns it into a filter. */
  readonly seccomp?: OciSeccomp;
  /** Device nodes to create in the container's /dev. */
  readonly devices: readonly OciDevice[];
  /** MS_* propagation flags for the container's /; absent: the runtime's default. */
  readonly rootfsPropagation?: number;
}

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

export interface OciDevice {
  /** Absolute, inside the container. */
  readonly path: string;
  /** `u` is an unbuffered character device (made as `c`); `p` a FIFO. */
  readonly type: "c" | "b" | "u" | "p";
  readonly major: number;
  readonly minor: number;
  readonly fileMode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

/** `linux.seccomp` with the spec's own field names and values (`SCMP_ACT_ERRNO`, `SCMP_ARCH_X86`). */
export interface OciSeccomp {
  readonly defaultAction: string;
  readonly defaultErrnoRet?: number;
  readonly architectures: readonly string[];
  /** `SECCOMP_FILTER_FLAG_LOG`, … */
  readonly flags: readonly string[];
  readonly syscalls: readonly OciSyscallRule[];
}

export interface OciSyscallRule {
  readonly names: readonly string[];
  readonly action: string;
  readonly errnoRet?: number;
  readonly args: readonly OciSyscallArg[];
}

export interface OciSyscallArg {
  readonly index: number;
  readonly value: number;
  readonly valueTwo?: number;
  /** `SCMP_CMP_EQ`, … */
  readonly op: string;
}

// ---------------------------------------------------------------------------
// Reading JSON values with the path of each

function fail(field: string, problem: string): never {
  throw new SpecError(field, `config.json: ${field} ${problem}`);
}

const child = (path: string, key: string) => (path ? `${path}.${key}` : key);
const item = (path: string, index: number) => `${path}[${index}]`;

type Read<T> = (value: unknown, path: string) => T;

/**
 * How an object treats each field it may have. `read`: gcr supports it.
 * `refuse`: present at all, it is refused. `refuse-unless-empty`: accepted
 * only at its zero value (see {@link isEmpty}).
 */
type Shape = Readonly<Record<string, "read" | "refuse" | "refuse-unless-empty">>;

/**
 * A field at its zero value asks for nothing: generators written in Go emit
 * `"blockIO": {"weight": 0}` or `"mountLabel": ""` for "unset", and runc
 * reads them that way too.
 */
function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined || value === "" || value === false || value === 0) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object") return Object.values(value).every(isEmpty);
  return false;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** An object's fields after checking every key against its shape; `null` counts as absent, as Go reads it. */
class Fields {
  readonly #values = new Map<string, unknown>();

  constructor(value: unknown, readonly path: string, shape: Shape) {
    if (!isObject(value)) fail(path, "must be an object");
    for (const [key, field] of Object.entries(value)) {
      const at = child(path, key);
      // hasOwn: a key such as "constructor" must not find Object.prototype's.
      const policy = Object.hasOwn(shape, key) ? shape[key] : undefined;
      if (policy === undefined) throw new SpecError(at, `config.json: unknown field ${at}`);
      if (policy === "refuse" && field !== null) fail(at, "is not supported by gcr");
      if (policy === "refuse-unless-empty" && !isEmpty(field)) fail(at, "is not supported by gcr");
      if (policy === "read" && field !== null) this.#values.set(key, field);
    }
  }

  at(key: string): string {
    return child(this.path, key);
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  required<T>(key: string, read: Read<T>): T {
    if (!this.#values.has(key)) fail(this.at(key), "is required");
    return read(this.#values.get(key), this.at(key));
  }

  optional<T>(key: string, read: Read<T>): T | undefined {
    return this.#values.has(key) ? read(this.#values.get(key), this.at(key)) : undefined;
  }

  or<T>(key: string, read: Read<T>, fallback: T): T {
    return this.optional(key, read) ?? fallback;
  }
}

const asString: Read<string> = (value, path) => {
  if (typeof value !== "string") fail(path, "must be a string");
  return value;
};

/** A string that becomes a C string: a NUL inside would cut it short. */
const asCString: Read<string> = (value, path) => {
  const text = asString(value, path);
  if (text.includes("\0")) fail(path, "must not contain a NUL character");
  return text;
};

const asBoolean: Read<boolean> = (value, path) => {
  if (typeof value !== "boolean") fail(path, "must be true or false");
  return value;
};

/** JSON numbers are doubles: past 2^53 a config's integer may already have been rounded by JSON.parse. */
function integer(min: number, max: number): Read<number> {
  return (value, path) => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      fail(path, `must be an integer from ${min} to ${max}`);
    }
    return value;
  };
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const asUint32 = integer(0, 0xffff_ffff);
const asInt64 = integer(-MAX_SAFE, MAX_SAFE);
const asUint64 = integer(0, MAX_SAFE);

function list<T>(read: Read<T>): Read<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) fail(path, "must be an array");
    return value.map((entry, index) => read(entry, item(path, index)));
  };
}

const asAbsolutePath: Read<string> = (value, path) => {
  const text = asCString(value, path);
  if (!text.startsWith("/")) fail(path, `must be an absolute path, not ${JSON.stringify(text)}`);
  return text;
};

const asStringMap: Read<Record<string, string>> = (value, path) => {
  if (!isObject(value)) fail(path, "must be an object of strings");
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string") fail(child(path, key), "must be a string");
    Object.defineProperty(out, key, { value: entry, enumerable: true, writable: true, configurable: true });
  }
  return out;
};

function oneOf<T extends string>(names: readonly T[]): Read<T> {
  return (value, path) => {
    if (typeof value !== "string" || !(names as readonly string[]).includes(value)) {
      fail(path, `must be one of ${names.join(", ")}, not ${JSON.stringify(value)}`);
    }
    return value as T;
  };
}

// ---------------------------------------------------------------------------
// process

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
const asEnvEntry: Read<string> = (value, path) => {
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

const asProcess: Read<OciProcess> = (value, path) => {
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

// ---------------------------------------------------------------------------
// mounts

type FlagChange = { readonly set: number } | { readonly clear: number };

/** Options that are mount(2) flags: runc's table (libcontainer/specconv). A Map, so "constructor" is not one. */
const MOUNT_FLAG_OPTIONS = new Map<string, FlagChange>([
  ["defaults", { set: 0 }],
  ["ro", { set: MS.RDONLY }],
  ["rw", { clear: MS.RDONLY }],
  ["nosuid", { set: MS.NOSUID }],
  ["suid", { clear: MS.NOSUID }],
  ["nodev", { set: MS.NODEV }],
  ["dev", { clear: MS.NODEV }],
  ["noexec", { set: MS.NOEXEC }],
  ["exec", { clear: MS.NOEXEC }],
  ["sync", { set: MS.SYNCHRONOUS }],
  ["async", { clear: MS.SYNCHRONOUS }],
  ["dirsync", { set: MS.DIRSYNC }],
  ["remount", { set: MS.REMOUNT }],
  ["mand", { set: MS.MANDLOCK }],
  ["nomand", { clear: MS.MANDLOCK }],
  ["noatime", { set: MS.NOATIME }],
  ["atime", { clear: MS.NOATIME }],
  ["nodiratime", { set: MS.NODIRATIME }],
  ["diratime", { clear: MS.NODIRATIME }],
  ["relatime", { set: MS.RELATIME }],
  ["norelatime", { clear: MS.RELATIME }],
  ["strictatime", { set: MS.STRICTATIME }],
  ["nostrictatime", { clear: MS.STRICTATIME }],
  ["bind", { set: MS.BIND }],
  ["rbind", { set: MS.BIND | MS.REC }],
  ["acl", { set: MS.POSIXACL }],
  ["noacl", { clear: MS.POSIXACL }],
  ["silent", { set: MS.SILENT }],
  ["loud", { clear: MS.SILENT }],
  ["iversion", { set: MS.I_VERSION }],
  ["noiversion", { clear: MS.I_VERSION }],
  ["lazytime", { set: MS.LAZYTIME }],
  ["nolazytime", { clear: MS.LAZYTIME }],
]);

const PROPAGATION = new Map<string, number>([
  ["private", MS.PRIVATE],
  ["rprivate", MS.PRIVATE | MS.REC],
  ["shared", MS.SHARED],
  ["rshared", MS.SHARED | MS.REC],
  ["slave", MS.SLAVE],
  ["rslave", MS.SLAVE | MS.REC],
  ["unbindable", MS.UNBINDABLE],
  ["runbindable", MS.UNBINDABLE | MS.REC],
]);

/**
 * Options runc understands that gcr does not: recursive mount attributes
 * (mount_setattr with AT_RECURSIVE), symlink following, runc's tmpfs copy-up
 * and id-mapped mounts. Passed on as data they would reach the file system,
 * which would refuse them or, worse, take them as its own.
 */
const UNSUPPORTED_MOUNT_OPTIONS = new Set([
  ..."ro rw nosuid suid nodev dev noexec exec atime noatime diratime nodiratime relatime norelatime strictatime"
    .split(" ")
    .map((option) => `r${option}`),
  "rnostrictatime",
  "rnosymfollow",
  "rsymfollow",
  "nosymfollow",
  "symfollow",
  "idmap",
  "ridmap",
]);

export interface ParsedMountOptions {
  readonly flags: number;
  readonly propagation: number;
  readonly data: string;
  /** `tmpcopyup` (runc's, crun's): the tmpfs starts with what the image has at its mount point. */
  readonly copyUp: boolean;
}

/**
 * Splits mount options the way runc's specconv does: later flags win over
 * earlier ones (`ro,rw` is read-write), propagation goes to its own call, and
 * anything else is the file system's (`mode=755,size=65536k`).
 * `path` names the options in errors.
 */
export function parseMountOptions(options: readonly string[], path = "options"): ParsedMountOptions {
  let flags = 0;
  let propagation = 0;
  let propagationOption = "";
  let copyUp = false;
  const data: string[] = [];
  options.forEach((option, index) => {
    const at = item(path, index);
    const change = MOUNT_FLAG_OPTIONS.get(option);
    const propagate = PROPAGATION.get(option);
    if (change) {
      flags = "set" in change ? flags | change.set : flags & ~change.clear;
    } else if (propagate !== undefined) {
      // runc makes one mount call per propagation option; gcr keeps one, so two would lose one.
      if (propagationOption) fail(at, `is a second propagation option (after ${propagationOption}); gcr takes one`);
      propagation = propagate;
      propagationOption = option;
    } else if (option === "tmpcopyup") {
      copyUp = true;
    } else if (UNSUPPORTED_MOUNT_OPTIONS.has(option)) {
      fail(at, `(${option}) is not supported by gcr`);
    } else {
      data.push(option);
    }
  });
  return { flags, propagation, data: data.join(","), copyUp };
}

function asMount(bundle: string): Read<OciMount> {
  return (value, path) => {
    // uidMappings/gidMappings make an id-mapped mount (runtime-spec 1.2), which gcr cannot make.
    const mount = new Fields(value, path, {
      destination: "read",
      type: "read",
      source: "read",
      options: "read",
      uidMappings: "refuse-unless-empty",
      gidMappings: "refuse-unless-empty",
    });
    const destination = mount.required("destination", asAbsolutePath);
    const declaredType = mount.or("type", asCString, "");
    const { flags: optionFlags, propagation, data, copyUp } = parseMountOptions(
      mount.or("options", list(asString), []),
      mount.at("options"),
    );
    // The spec makes type a no-op for bind mounts; runc and crun also take type "bind" alone as one.
    const bind = (optionFlags & MS.BIND) !== 0 || declaredType === "bind";
    const flags = bind ? optionFlags | MS.BIND : optionFlags;
    let source = mount.or("source", asCString, "");
    if (bind) {
      if (!source) fail(mount.at("source"), "is required for a bind mount");
      source = resolvePath(bundle, source);
    } else if (!declaredType) {
      fail(mount.at("type"), "is required unless the mount is a bind mount");
    }
    return {
      destination,
      type: bind ? "bind" : declaredType,
      source,
      flags,
      propagation,
      data,
      bind,
      recursive: bind && (flags & MS.REC) !== 0,
      readOnly: (flags & MS.RDONLY) !== 0,
      ...(copyUp ? { copyUp } : {}),
    };
  };
}

// ---------------------------------------------------------------------------
// linux

const LINUX: Shape = {
  namespaces: "read",
  uidMappings: "read",
  gidMappings: "read",
  sysctl: "read",
  resources: "read",
  cgroupsPath: "read",
  maskedPaths: "read",
  readonlyPaths: "read",
  seccomp: "read",
  devices: "read",
  rootfsPropagation: "read",
  mountLabel: "refuse-unless-empty",
  personality: "refuse",
  intelRdt: "refuse",
  timeOffsets: "refuse",
  // runtime-spec 1.3, past what gcr reads.
  netDevices: "refuse",
  memoryPolicy: "refuse",
};

const asNamespaces: Read<OciNamespace[]> = (value, path) => {
  const seen = new Set<string>();
  return list<OciNamespace>((entry, at) => {
    const namespace = new Fields(entry, at, { type: "read", path: "read" });
    const type = namespace.required("type", asString);
    // A time namespace needs linux.timeOffsets written before its first process, which gcr does not do.
    if (type === "time") fail(namespace.at("type"), "time is not supported by gcr");
    if (!Object.hasOwn(NAMESPACE_FLAGS, type)) {
      fail(
        namespace.at("type"),
        `must be one of ${Object.keys(NAMESPACE_FLAGS).join(", ")}, not ${JSON.stringify(type)}`,
      );
    }
    if (seen.has(type)) fail(namespace.at("type"), `repeats ${type}`);
    seen.add(type);
    const nsPath = namespace.optional("path", asAbsolutePath);
    const known = type as NamespaceType;
    return { type: known, flag: NAMESPACE_FLAGS[known], ...(nsPath ? { path: nsPath } : {}) };
  })(value, path);
};

const asIdMapping: Read<IdMapping> = (value, path) => {
  const mapping = new Fields(value, path, { containerID: "read", hostID: "read", size: "read" });
  return {
    inside: mapping.required("containerID", asUint32),
    outside: mapping.required("hostID", asUint32),
    count: mapping.required("size", integer(1, 0xffff_ffff)),
  };
};

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

const asResources: Read<OciResources> = (value, path) => {
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

/** `{key: value}` when value is defined, else `{}`: spread into a result so absent fields stay absent. */
function optionalEntry<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

const asDevice: Read<OciDevice> = (value, path) => {
  const device = new Fields(value, path, {
    path: "read",
    type: "read",
    major: "read",
    minor: "read",
    fileMode: "read",
    uid: "read",
    gid: "read",
  });
  const type = device.required("type", oneOf(["c", "b", "u", "p"] as const));
  // A FIFO has no device number; every other node needs one.
  const number = (key: string) =>
    type === "p" ? device.or(key, asUint32, 0) : device.required(key, integer(0, 0xffff_ffff));
  return {
    path: device.required("path", asAbsolutePath),
    type,
    major: number("major"),
    minor: number("minor"),
    // Engines pass stat's st_mode, file type bits included (podman: 0o20666
    // for a character device); the type comes from `type`, so only the
    // permission bits are kept.
    ...optionalEntry("fileMode", device.optional("fileMode", (v, p) => integer(0, 0o177777)(v, p) & 0o7777)),
    ...optionalEntry("uid", device.optional("uid", asUint32)),
    ...optionalEntry("gid", device.optional("gid", asUint32)),
  };
};

function named(pattern: RegExp, example: string): Read<string> {
  return (value, path) => {
    const name = asString(value, path);
    if (!pattern.test(name)) fail(path, `must be a name like ${example}, not ${JSON.stringify(name)}`);
    return name;
  };
}

const asSeccompAction: Read<string> = (value, path) => {
  const action = named(/^SCMP_ACT_[A-Z_]+$/, "SCMP_ACT_ERRNO")(value, path);
  // NOTIFY hands the syscall to a listener at linux.seccomp.listenerPath, which gcr refuses.
  if (action === "SCMP_ACT_NOTIFY") fail(path, "SCMP_ACT_NOTIFY is not supported by gcr");
  return action;
};

const asSyscallArg: Read<OciSyscallArg> = (value, path) => {
  const arg = new Fields(value, path, { index: "read", value: "read", valueTwo: "read", op: "read" });
  return {
    index: arg.required("index", integer(0, 5)),
    value: arg.required("value", asUint64),
    ...optionalEntry("valueTwo", arg.optional("valueTwo", asUint64)),
    op: arg.required("op", named(/^SCMP_CMP_[A-Z_]+$/, "SCMP_CMP_EQ")),
  };
};

const asSyscallRule: Read<OciSyscallRule> = (value, path) => {
  // comment, includes and excludes are Docker's profile format, not the spec's.
  const rule = new Fields(value, path, { names: "read", action: "read", errnoRet: "read", args: "read" });
  const names = rule.required("names", list(asString));
  if (names.length === 0) fail(rule.at("names"), "must name at least one syscall");
  return {
    names,
    action: rule.required("action", asSeccompAction),
    ...optionalEntry("errnoRet", rule.optional("errnoRet", asUint32)),
    args: rule.or("args", list(asSyscallArg), []),
  };
};

const asSeccomp: Read<OciSeccomp> = (value, path) => {
  const seccomp = new Fields(value, path, {
    defaultAction: "read",
    defaultErrnoRet: "read",
    architectures: "read",
    flags: "read",
    syscalls: "read",
    listenerPath: "refuse-unless-empty",
    listenerMetadata: "refuse-unless-empty",
  });
  return {
    defaultAction: seccomp.required("defaultAction", asSeccompAction),
    ...optionalEntry("defaultErrnoRet", seccomp.optional("defaultErrnoRet", asUint32)),
    architectures: seccomp.or("architectures", list(named(/^SCMP_ARCH_[A-Z0-9_]+$/, "SCMP_ARCH_X86_64")), []),
    flags: seccomp.or("flags", list(named(/^SECCOMP_FILTER_FLAG_[A-Z_]+$/, "SECCOMP_FILTER_FLAG_LOG")), []),
    syscalls: seccomp.or("syscalls", list(asSyscallRule), []),
  };
};

const asPropagation: Read<number> = (value, path) => {
  const name = oneOf([...PROPAGATION.keys()])(value, path);
  return PROPAGATION.get(name) ?? 0;
};

const asLinux: Read<OciLinux> = (value, path) => {
  const linux = new Fields(value, path, LINUX);
  const resources = linux.optional("resources", asResources);
  const cgroupsPath = linux.optional("cgroupsPath", asCString);
  const seccomp = linux.optional("seccomp", asSeccomp);
  const rootfsPropagation = linux.optional("rootfsPropagation", asPropagation);
  return {
    namespaces: linux.or("namespaces", asNamespaces, []),
    uidMappings: linux.or("uidMappings", list(asIdMapping), []),
    gidMappings: linux.or("gidMappings", list(asIdMapping), []),
    sysctl: linux.or("sysctl", asStringMap, {}),
    ...(resources ? { resources } : {}),
    ...(cgroupsPath === undefined ? {} : { cgroupsPath }),
    maskedPaths: linux.or("maskedPaths", list(asAbsolutePath), []),
    readonlyPaths: linux.or("readonlyPaths", list(asAbsolutePath), []),
    ...(seccomp ? { seccomp } : {}),
    devices: linux.or("devices", list(asDevice), []),
    ...(rootfsPropagation === undefined ? {} : { rootfsPropagation }),
  };
};

// ---------------------------------------------------------------------------
// The whole file

const HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

const TOP: Shape = {
  ociVersion: "read",
  root: "read",
  mounts: "read",
  process: "read",
  hostname: "read",
  domainname: "read",
  annotations: "read",
  hooks: "read",
  linux: "read",
  solaris: "refuse",
  windows: "refuse",
  vm: "refuse",
  zos: "refuse",
  freebsd: "refuse",
};

/** gcr runs no hooks: a config that has some would be started without what they set up. */
function checkHooks(value: unknown, path: string): void {
  const hooks = new Fields(value, path, Object.fromEntries(HOOKS.map((name) => [name, "read" as const])));
  for (const name of HOOKS) {
    const entries = hooks.optional(name, list((entry) => entry));
    if (entries?.length) fail(hooks.at(name), "is not supported by gcr (it runs no hooks)");
  }
}

/** Checks between fields, as runc's validator makes them, so they fail here rather than half-way through setup. */
function checkConsistency(spec: OciSpec): void {
  const namespace = (type: NamespaceType) => spec.linux.namespaces.find((ns) => ns.type === type);
  for (const field of ["hostname", "domainname"] as const) {
    if (spec[field] && !namespace("uts")) fail(field, "needs a uts namespace in linux.namespaces");
  }
  const user = namespace("user");
  for (const field of ["uidMappings", "gidMappings"] as const) {
    if (spec.linux[field].length && !user) fail(`linux.${field}`, "needs a user namespace in linux.namespaces");
    // A new user namespace without a map leaves every id as the overflow id, and root as nobody.
    if (user && !user.path && !spec.linux[field].length) {
      fail(`linux.${field}`, "is required with a new user namespace");
    }
  }
}

/**
 * Checks a parsed config.json and returns what it asks for. `bundle` is the
 * bundle folder, against which relative root and bind-mount paths resolve.
 * Throws a {@link SpecError} naming the first field gcr cannot take.
 */
export function parseSpec(json: unknown, bundle: string): OciSpec {
  if (!isObject(json)) throw new SpecError("", "config.json: must hold a JSON object");
  const top = new Fields(json, "", TOP);
  const base = resolvePath(bundle);
  const ociVersion = top.required("ociVersion", asString);
  if (!ociVersion.startsWith("1.")) {
    fail("ociVersion", `must be a 1.x runtime-spec version, not ${JSON.stringify(ociVersion)}`);
  }
  if (top.has("hooks")) checkHooks(top.required("hooks", (value) => value), "hooks");
  const root = top.required("root", (value, path) => {
    const fields = new Fields(value, path, { path: "read", readonly: "read" });
    const rootPath = fields.required("path", asCString);
    if (!rootPath) fail(fields.at("path"), "must not be empty");
    return { path: resolvePath(base, rootPath), readonly: fields.or("readonly", asBoolean, false) };
  });
  const hostname = top.optional("hostname", asCString);
  const domainname = top.optional("domainname", asCString);
  const spec: OciSpec = {
    ociVersion,
    bundle: base,
    root,
    ...(hostname === undefined ? {} : { hostname }),
    ...(domainname === undefined ? {} : { domainname }),
    annotations: top.or("annotations", asStringMap, {}),
    process: top.required("process", asProcess),
    mounts: top.or("mounts", list(asMount(base)), []),
    linux: top.or("linux", asLinux, asLinux({}, "linux")),
  };
  checkConsistency(spec);
  return spec;
}

/** Reads and checks `<bundle>/config.json`. Every failure is a one-line {@link SpecError}. */
export function readSpec(bundle: string): OciSpec {
  const file = `${resolvePath(bundle)}/config.json`;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new SpecError("", `${file}: no such file (an OCI bundle has its config.json at its top)`);
    }
    throw new SpecError("", `${file}: cannot read: ${error instanceof Error ? error.message : String(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // V8's message already gives the position, line and column.
    throw new SpecError("", `${file}: invalid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseSpec(json, bundle);
}
