/**
 * Seccomp filters, built by gcr (the parent) with libseccomp through FFI and
 * handed to the child as plain BPF bytes: the child only passes them to
 * prctl(PR_SET_SECCOMP) (steps/install_seccomp.ts), it cannot call
 * libseccomp (that mallocs).
 *
 * ```ts
 * const caps = resolveCapabilities([], []);
 * const bpf = compileProfile(defaultProfile(caps)); // struct sock_filter[], 8 bytes each
 * ```
 *
 * Profiles are data in the shape of Docker's seccomp JSON (`defaultAction`,
 * `syscalls[{names, action, args}]`), whether gcr's built-in default, one
 * loaded with `--security-opt seccomp=profile.json` (loadProfile) or the
 * `linux.seccomp` object of an OCI config.json (profileFromOci).
 *
 * @module
 */
import { ERRNO, MFD_CLOEXEC } from "../../ffi/constants.ts";
import { errnoName, lastErrno } from "../../ffi/errno.ts";
import { libc } from "../../ffi/libc.ts";
import { CAPABILITIES, capabilityNumber } from "../capabilities.ts";

const { EPERM, ENOSYS } = ERRNO;

// ---------------------------------------------------------------------------
// libseccomp (seccomp.h of libseccomp 2.5), loaded on first use

const seccompSymbols = {
  // scmp_filter_ctx seccomp_init(uint32_t def_action)
  seccomp_init: { parameters: ["u32"], result: "pointer" },
  // void seccomp_release(scmp_filter_ctx ctx)
  seccomp_release: { parameters: ["pointer"], result: "void" },
  // int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token)
  seccomp_arch_add: { parameters: ["pointer", "u32"], result: "i32" },
  // uint32_t seccomp_arch_resolve_name(const char *arch_name)
  seccomp_arch_resolve_name: { parameters: ["buffer"], result: "u32" },
  // int seccomp_syscall_resolve_name(const char *name)
  seccomp_syscall_resolve_name: { parameters: ["buffer"], result: "i32" },
  // int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
  //                            unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array)
  // The array form of the variadic seccomp_rule_add: comparisons travel as a
  // pointer to struct scmp_arg_cmp[], not as structs passed by value.
  seccomp_rule_add_array: { parameters: ["pointer", "u32", "i32", "u32", "buffer"], result: "i32" },
  // int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd)
  seccomp_export_bpf: { parameters: ["pointer", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let library: Deno.DynamicLibrary<typeof seccompSymbols> | undefined;

function seccomp(): Deno.DynamicLibrary<typeof seccompSymbols>["symbols"] {
  if (!library) {
    try {
      library = Deno.dlopen("libseccomp.so.2", seccompSymbols);
    } catch (error) {
      throw new Error(
        `Cannot load libseccomp.so.2 (Debian package libseccomp2), needed for the seccomp filter: ${
          (error as Error).message
        }`,
      );
    }
  }
  return library.symbols;
}

const cString = (text: string) => new TextEncoder().encode(text + "\0");

/** libseccomp returns -errno. */
function checkSeccomp(result: number, call: string): void {
  if (result < 0) throw new Error(`${call}: ${errnoName(-result)}`);
}

// ---------------------------------------------------------------------------
// Actions and comparisons (seccomp.h)

const ACTIONS = {
  SCMP_ACT_KILL_PROCESS: 0x80000000,
  SCMP_ACT_KILL_THREAD: 0x00000000,
  SCMP_ACT_KILL: 0x00000000,
  SCMP_ACT_TRAP: 0x00030000,
  SCMP_ACT_LOG: 0x7ffc0000,
  SCMP_ACT_ALLOW: 0x7fff0000,
} as const;
const ACT_ERRNO = 0x00050000;
const ACT_TRACE = 0x7ff00000;

/** What a matching syscall gets: `SCMP_ACT_ERRNO` with its errno, or another libseccomp action. */
export type SeccompAction =
  | { readonly action: "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE"; readonly ret: number }
  | { readonly action: keyof typeof ACTIONS };

/** `SCMP_A0(SCMP_CMP_MASKED_EQ, mask, value)` is `{index: 0, op: "SCMP_CMP_MASKED_EQ", value: mask, valueTwo: value}`. */
export interface ArgComparison {
  readonly index: number;
  readonly op: keyof typeof COMPARISONS;
  readonly value: bigint;
  readonly valueTwo: bigint;
}

const COMPARISONS = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
} as const;

/** struct scmp_arg_cmp: unsigned int arg; enum scmp_compare op; scmp_datum_t datum_a, datum_b. */
const ARG_CMP = { size: 24, arg: 0, op: 4, datum_a: 8, datum_b: 16 } as const;

export interface SeccompRule {
  readonly names: readonly string[];
  readonly action: SeccompAction;
  /** All must hold (AND). */
  readonly args: readonly ArgComparison[];
}

export interface SeccompProfile {
  readonly defaultAction: SeccompAction;
  /** libseccomp architecture names added beside the native one (`x86`, `x32`). */
  readonly architectures: readonly string[];
  readonly rules: readonly SeccompRule[];
}

function actionValue(action: SeccompAction): number {
  if ("ret" in action) {
    return ((action.action === "SCMP_ACT_ERRNO" ? ACT_ERRNO : ACT_TRACE) | (action.ret & 0xffff)) >>> 0;
  }
  return ACTIONS[action.action];
}

/** `SCMP_ACT_ERRNO(EPERM)`, `SCMP_ACT_ALLOW`. */
export function showAction(action: SeccompAction): string {
  return "ret" in action ? `${action.action}(${errnoName(action.ret) || action.ret})` : action.action;
}

// ---------------------------------------------------------------------------
// gcr's default profile

const deny: SeccompAction = { action: "SCMP_ACT_ERRNO", ret: EPERM };

/** Namespace flags of clone(2)/unshare(2) (linux/sched.h), for argument rules. */
const NAMESPACE_FLAGS = {
  CLONE_NEWNS: 0x00020000n,
  CLONE_NEWCGROUP: 0x02000000n,
  CLONE_NEWUTS: 0x04000000n,
  CLONE_NEWIPC: 0x08000000n,
  CLONE_NEWUSER: 0x10000000n,
  CLONE_NEWPID: 0x20000000n,
  CLONE_NEWNET: 0x40000000n,
} as const;

/** `(arg[index] & flag) == flag`. */
const hasFlag = (index: number, flag: bigint): ArgComparison => ({
  index,
  op: "SCMP_CMP_MASKED_EQ",
  value: flag,
  valueTwo: flag,
});

/**
 * Syscalls blocked unless the container keeps the capability that the
 * kernel would ask for anyway, as Docker's default profile does
 * (moby `profiles/seccomp/default.json`, its `includes.caps` entries).
 * Without that capability the kernel would refuse most of them too; the
 * filter also shuts the ones a capability in a user namespace would allow.
 */
const BLOCKED_WITHOUT: readonly { cap: keyof typeof CAPABILITIES | undefined; names: readonly string[] }[] = [
  {
    // Never allowed (Docker allows none of them to anyone): kernel keyrings are
    // not namespaced; the rest reach kernel state a container must not touch.
    cap: undefined,
    names: [
      "keyctl",
      "add_key",
      "request_key",
      "userfaultfd",
      "uselib",
      "ustat",
      "sysfs",
      "_sysctl",
      "nfsservctl",
      "lookup_dcookie",
      "get_kernel_syms",
      "query_module",
      "create_module",
      "vm86",
      "vm86old",
      // Docker allows five personas (0, 8, 0x20000, 0x20008, 0xffffffff) from
      // an allow-list. Under a default-allow filter that takes several
      // comparisons on one argument, which libseccomp 2.5 refuses (EINVAL,
      // tried here), so gcr blocks personality outright: `linux32` fails.
      "personality",
    ],
  },
  {
    cap: "SYS_ADMIN",
    names: [
      "mount",
      "umount",
      "umount2",
      "pivot_root",
      "fsopen",
      "fsconfig",
      "fsmount",
      "fspick",
      "move_mount",
      "open_tree",
      "mount_setattr",
      "setns",
      "unshare",
      "quotactl",
      "quotactl_fd",
      "bpf",
      "perf_event_open",
      "fanotify_init",
      "name_to_handle_at",
    ],
  },
  // Docker allows ptrace to everyone on kernels >= 4.8; gcr keeps it behind
  // CAP_SYS_PTRACE, as issue 4 asks.
  { cap: "SYS_PTRACE", names: ["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "process_madvise"] },
  { cap: "SYS_MODULE", names: ["init_module", "finit_module", "delete_module"] },
  { cap: "SYS_BOOT", names: ["reboot", "kexec_load", "kexec_file_load"] },
  {
    cap: "SYS_TIME",
    names: ["settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime", "adjtimex"],
  },
  { cap: "SYS_PACCT", names: ["acct"] },
  { cap: "SYS_RAWIO", names: ["iopl", "ioperm"] },
  { cap: "SYS_NICE", names: ["get_mempolicy", "set_mempolicy", "mbind", "move_pages"] },
  { cap: "SYSLOG", names: ["syslog"] },
  { cap: "DAC_READ_SEARCH", names: ["open_by_handle_at"] },
  { cap: "SYS_RESOURCE", names: ["swapon", "swapoff"] },
];

/**
 * gcr's default profile: allow by default, EPERM for the blocklist above
 * (with exceptions for capabilities in `caps`), and
 * - unshare(CLONE_NEWUSER) and clone(CLONE_NEWUSER) always denied, by an
 *   argument rule (a new user namespace gives back every capability);
 * - without CAP_SYS_ADMIN, clone with any namespace flag denied;
 * - clone3 gets ENOSYS, as in Docker: its flags are in a struct BPF cannot
 *   read, and ENOSYS makes glibc fall back to clone, which is checked.
 * The chain's own calls after the filter (write, read, chdir, execve) stay
 * allowed.
 */
export function defaultProfile(caps: ReadonlySet<number>): SeccompProfile {
  const has = (cap: keyof typeof CAPABILITIES | undefined) => cap !== undefined && caps.has(CAPABILITIES[cap]);
  const blocked = new Set(BLOCKED_WITHOUT.filter((group) => !has(group.cap)).flatMap((group) => group.names));
  const rules: SeccompRule[] = [...blocked].map((name) => ({ names: [name], action: deny, args: [] }));
  if (!blocked.has("unshare")) {
    rules.push({ names: ["unshare"], action: deny, args: [hasFlag(0, NAMESPACE_FLAGS.CLONE_NEWUSER)] });
  }
  const cloneFlags = has("SYS_ADMIN") ? [NAMESPACE_FLAGS.CLONE_NEWUSER] : Object.values(NAMESPACE_FLAGS);
  // One rule per flag: "any of these bits" is not one comparison, "this bit" is.
  for (const flag of cloneFlags) rules.push({ names: ["clone"], action: deny, args: [hasFlag(0, flag)] });
  rules.push({ names: ["clone3"], action: { action: "SCMP_ACT_ERRNO", ret: ENOSYS }, args: [] });
  // The 32-bit ABIs get the same rules; without them libseccomp would kill
  // any 32-bit syscall (its bad-architecture action), which is safe but
  // breaks 32-bit programs that Docker runs.
  return { defaultAction: { action: "SCMP_ACT_ALLOW" }, architectures: ["x86", "x32"], rules };
}

// ---------------------------------------------------------------------------
// Reading profiles: Docker's JSON and the runtime spec's `linux.seccomp`
//
// Both formats share actions, comparisons and argument rules, so one set of
// readers serves both; they differ in how an error reads (Docker's names the
// profile file's field, the runtime spec's the path in config.json), so the
// readers take the format's way of wording a fault.

/** What is wrong at a place in a profile; each format words it its own way. */
type _Fault =
  /** A field gcr does not implement: refused rather than ignored. */
  | { readonly kind: "field" }
  | { readonly kind: "action"; readonly name: unknown }
  | { readonly kind: "notify" }
  | { readonly kind: "value"; readonly problem: string };

/** Builds the error for a fault at `where` (a path inside the profile, `syscalls[3].action`). */
type _Fail = (where: string, fault: _Fault) => Error;

/** Docker's profile: the wording `--security-opt seccomp=…` users have seen so far. */
const _dockerFail: _Fail = (where, fault) => {
  switch (fault.kind) {
    case "field":
      return new Error(`Unsupported seccomp profile field ${where}`);
    case "action":
      return new Error(`Unknown seccomp profile action at ${where}: ${JSON.stringify(fault.name)}`);
    case "notify":
      return new Error(`Unsupported seccomp profile action at ${where}: SCMP_ACT_NOTIFY (gcr has no listener)`);
    case "value":
      return new Error(`Invalid seccomp profile${where ? ` ${where}` : ""}: ${fault.problem}`);
  }
};

/** The runtime spec's: every message starts with the path in config.json, `linux.seccomp.flags[0]: …`. */
const _ociFail: _Fail = (where, fault) => {
  const at = where ? `linux.seccomp.${where}` : "linux.seccomp";
  switch (fault.kind) {
    case "field":
      return new Error(`${at}: unknown field (gcr refuses what it does not implement rather than ignore it)`);
    case "action":
      return new Error(`${at}: ${JSON.stringify(fault.name)} is not a seccomp action`);
    case "notify":
      return new Error(`${at}: SCMP_ACT_NOTIFY is not supported (gcr has no seccomp listener)`);
    case "value":
      return new Error(`${at}: ${fault.problem}`);
  }
};

const _join = (where: string, key: string) => (where ? `${where}.${key}` : key);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function _onlyFields(value: Record<string, unknown>, allowed: ReadonlySet<string>, where: string, fail: _Fail): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) throw fail(_join(where, key), { kind: "field" });
  }
}

/** An action by its libseccomp name; `ret` is the errno for SCMP_ACT_ERRNO and SCMP_ACT_TRACE. */
function _parseAction(name: unknown, ret: number, where: string, fail: _Fail): SeccompAction {
  if (name === "SCMP_ACT_ERRNO" || name === "SCMP_ACT_TRACE") {
    if (!Number.isInteger(ret) || ret < 0 || ret > 0xffff) {
      throw fail(where, { kind: "value", problem: `errnoRet ${JSON.stringify(ret)} (0-65535)` });
    }
    return { action: name, ret };
  }
  // Object.hasOwn, not `in`: "toString" is not an action.
  if (typeof name === "string" && Object.hasOwn(ACTIONS, name)) return { action: name as keyof typeof ACTIONS };
  if (name === "SCMP_ACT_NOTIFY") throw fail(where, { kind: "notify" });
  throw fail(where, { kind: "action", name });
}

function _parseUint64(value: unknown, where: string, fail: _Fail): bigint {
  if (value === undefined) return 0n;
  if (typeof value === "bigint" && value >= 0n && value < 1n << 64n) return value;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === "string" && /^\d+$/.test(value) && BigInt(value) < 1n << 64n) return BigInt(value);
  // A JSON number past 2^53 has already lost digits in JSON.parse: refuse it rather than compare against another value.
  throw fail(where, {
    kind: "value",
    problem: `${JSON.stringify(String(value))} (a non-negative integer; past 2^53 give it as a string)`,
  });
}

const ARG_FIELDS = new Set(["index", "value", "valueTwo", "op"]);

/**
 * A rule's argument comparisons. An absent `value`/`valueTwo` is 0, as
 * runc's Go structs read it.
 */
function _parseArgs(argsIn: unknown, where: string, fail: _Fail): ArgComparison[] {
  const args = argsIn ?? [];
  if (!Array.isArray(args)) throw fail(where, { kind: "value", problem: "not an array" });
  return args.map((arg, j): ArgComparison => {
    const at = `${where}[${j}]`;
    if (!isObject(arg)) throw fail(at, { kind: "value", problem: "not an object" });
    _onlyFields(arg, ARG_FIELDS, at, fail);
    if (!Number.isInteger(arg.index) || (arg.index as number) < 0 || (arg.index as number) > 5) {
      throw fail(`${at}.index`, { kind: "value", problem: `${JSON.stringify(arg.index)} (0-5)` });
    }
    if (typeof arg.op !== "string" || !Object.hasOwn(COMPARISONS, arg.op)) {
      throw fail(`${at}.op`, {
        kind: "value",
        problem: `${JSON.stringify(arg.op)} is not a comparison (${Object.keys(COMPARISONS).join(", ")})`,
      });
    }
    return {
      index: arg.index as number,
      op: arg.op as keyof typeof COMPARISONS,
      value: _parseUint64(arg.value, `${at}.value`, fail),
      valueTwo: _parseUint64(arg.valueTwo, `${at}.valueTwo`, fail),
    };
  });
}

/** A rule's syscall names: a list of strings (unknown names are skipped later, when compiling). */
function _parseNames(names: unknown, where: string, fail: _Fail): string[] {
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
    throw fail(where, { kind: "value", problem: "not an array of strings" });
  }
  return names as string[];
}

// Docker's profile JSON

const PROFILE_FIELDS = new Set([
  "defaultAction",
  "defaultErrnoRet",
  "defaultErrno",
  "architectures",
  "archMap",
  "syscalls",
]);
const RULE_FIELDS = new Set([
  "names",
  "name",
  "action",
  "args",
  "errnoRet",
  "errno",
  "comment",
  "includes",
  "excludes",
]);
const FILTER_FIELDS = new Set(["caps", "arches", "minKernel"]);
/** Docker's names for this machine's architectures (Go's GOARCH and its 32-bit companions). */
const NATIVE_DOCKER_ARCHES = ["amd64", "x86_64"];

/**
 * The errno a rule returns: `errnoRet` (Docker's, a number) or `errno`
 * (containers-common's, a name such as `ENOSYS`), else `fallback`.
 */
function errnoOf(ret: unknown, name: unknown, fallback: number, where: string): number {
  if (ret !== undefined) return ret as number;
  if (name === undefined) return fallback;
  if (!errnoNumbers) {
    errnoNumbers = new Map();
    for (let errno = 1; errno < 200; errno++) errnoNumbers.set(errnoName(errno), errno);
  }
  const errno = errnoNumbers.get(String(name));
  if (errno === undefined) throw new Error(`Unknown errno name at ${where}: ${JSON.stringify(name)}`);
  return errno;
}
let errnoNumbers: Map<string, number> | undefined;

function kernelAtLeast(version: string): boolean {
  const parse = (text: string) => (text.match(/^(\d+)\.(\d+)/) ?? []).slice(1).map(Number);
  const [major = 0, minor = 0] = parse(Deno.osRelease());
  const [wantMajor = 0, wantMinor = 0] = parse(version);
  return major > wantMajor || (major === wantMajor && minor >= wantMinor);
}

/** Whether an `includes`/`excludes` filter matches this container (its caps, this arch and kernel). */
function filterMatches(filter: unknown, caps: ReadonlySet<number>, where: string, mode: "all" | "any"): boolean {
  const fail = _dockerFail;
  if (!isObject(filter)) throw fail(where, { kind: "value", problem: "not an object" });
  _onlyFields(filter, FILTER_FIELDS, where, fail);
  const tests: boolean[] = [];
  if (filter.caps !== undefined) {
    if (!Array.isArray(filter.caps)) throw fail(`${where}.caps`, { kind: "value", problem: "not an array" });
    const held = filter.caps.map((name) => caps.has(capabilityNumber(String(name))));
    tests.push(mode === "all" ? held.every(Boolean) : held.some(Boolean));
  }
  if (filter.arches !== undefined) {
    if (!Array.isArray(filter.arches)) throw fail(`${where}.arches`, { kind: "value", problem: "not an array" });
    tests.push(filter.arches.some((arch) => NATIVE_DOCKER_ARCHES.includes(String(arch))));
  }
  if (filter.minKernel !== undefined) tests.push(kernelAtLeast(String(filter.minKernel)));
  return mode === "all" ? tests.every(Boolean) : tests.some(Boolean);
}

/** `SCMP_ARCH_X86` → `x86`, as seccomp_arch_resolve_name takes it (Docker writes both forms). */
const archName = (name: unknown) => String(name).replace(/^SCMP_ARCH_/, "").toLowerCase();

/**
 * A profile from Docker's seccomp JSON. `caps` decides rules with
 * `includes.caps`/`excludes.caps`. Fields gcr does not implement
 * (`listenerPath`, `flags`, …) are refused with an error naming them,
 * rather than ignored.
 */
export function loadProfile(json: string | unknown, caps: ReadonlySet<number>): SeccompProfile {
  const fail = _dockerFail;
  const profile = typeof json === "string" ? JSON.parse(json) as unknown : json;
  if (!isObject(profile)) throw fail("", { kind: "value", problem: "not a JSON object" });
  _onlyFields(profile, PROFILE_FIELDS, "", fail);
  const defaultRet = errnoOf(profile.defaultErrnoRet, profile.defaultErrno, EPERM, "defaultErrno");
  const defaultAction = _parseAction(profile.defaultAction, defaultRet, "defaultAction", fail);

  const architectures: string[] = [];
  if (profile.architectures !== undefined) {
    if (!Array.isArray(profile.architectures)) {
      throw fail("architectures", { kind: "value", problem: "not an array" });
    }
    architectures.push(...profile.architectures.map(archName));
  }
  if (profile.archMap !== undefined) {
    if (!Array.isArray(profile.archMap)) throw fail("archMap", { kind: "value", problem: "not an array" });
    for (const [i, entry] of profile.archMap.entries()) {
      if (!isObject(entry)) throw fail(`archMap[${i}]`, { kind: "value", problem: "not an object" });
      _onlyFields(entry, new Set(["architecture", "subArchitectures"]), `archMap[${i}]`, fail);
      // Only the entry for this machine counts: its 32-bit companions join it.
      if (archName(entry.architecture) !== "x86_64") continue;
      const subs = Array.isArray(entry.subArchitectures) ? entry.subArchitectures : [];
      architectures.push(...subs.map(archName));
    }
  }

  const rules: SeccompRule[] = [];
  const syscalls = profile.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw fail("syscalls", { kind: "value", problem: "not an array" });
  for (const [i, rule] of syscalls.entries()) {
    const where = `syscalls[${i}]`;
    if (!isObject(rule)) throw fail(where, { kind: "value", problem: "not an object" });
    _onlyFields(rule, RULE_FIELDS, where, fail);
    const names = _parseNames(rule.names ?? (rule.name === undefined ? [] : [rule.name]), `${where}.names`, fail);
    // A rule's errno defaults to EPERM, not to defaultErrnoRet (as in runc).
    const ret = errnoOf(rule.errnoRet, rule.errno, rule.action === "SCMP_ACT_TRACE" ? 0 : EPERM, `${where}.errno`);
    const action = _parseAction(rule.action, ret, `${where}.action`, fail);
    const args = _parseArgs(rule.args, `${where}.args`, fail);
    if (rule.includes !== undefined && !filterMatches(rule.includes, caps, `${where}.includes`, "all")) continue;
    if (rule.excludes !== undefined && filterMatches(rule.excludes, caps, `${where}.excludes`, "any")) continue;
    rules.push({ names, action, args });
  }
  return { defaultAction, architectures, rules };
}

// The runtime spec's linux.seccomp (config-linux.md, "Seccomp")

const OCI_FIELDS = new Set([
  "defaultAction",
  "defaultErrnoRet",
  "architectures",
  "flags",
  "listenerPath",
  "listenerMetadata",
  "syscalls",
]);
const OCI_RULE_FIELDS = new Set(["names", "action", "errnoRet", "args"]);

/**
 * The `flags` gcr honours, and why the others cannot be. The child
 * installs its filter with prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)
 * (steps/install_seccomp.ts), the equivalent of seccomp(SECCOMP_SET_MODE_FILTER,
 * 0, prog): there is no flags argument to pass them in.
 */
const OCI_FLAGS: Readonly<Record<string, { readonly ok: true } | { readonly why: string }>> = {
  // Synchronising the filter to all of the caller's threads is what
  // happens anyway: the child that installs it is single-threaded (a libc
  // clone running a ucontext chain, DESIGN.md §2).
  SECCOMP_FILTER_FLAG_TSYNC: { ok: true },
  SECCOMP_FILTER_FLAG_LOG: { why: "logging of non-allow actions needs seccomp(2) flags; gcr installs with prctl" },
  // Without it the kernel turns on the Speculative Store Bypass mitigation
  // for the container, the safer side; still, refused rather than ignored.
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: {
    why: "leaving Speculative Store Bypass mitigation off needs seccomp(2) flags; gcr installs with prctl",
  },
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: { why: "it belongs to SCMP_ACT_NOTIFY listeners, which gcr does not have" },
  SECCOMP_FILTER_FLAG_NEW_LISTENER: { why: "gcr has no seccomp listener" },
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: { why: "it needs seccomp(2) flags; gcr installs with prctl" },
};

/** A uint from config.json (errnoRet, defaultErrnoRet). */
function _ociErrno(value: unknown, where: string): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 0xffff) {
    throw _ociFail(where, { kind: "value", problem: `${JSON.stringify(value)} is not an errno (0-65535)` });
  }
  return value as number;
}

/**
 * The action of a rule or the default one, with its errno: as the spec
 * says, `errnoRet` defaults to EPERM (for SCMP_ACT_TRACE too, as in runc)
 * and an action that takes no errno but is given one is an error.
 */
function _ociAction(action: unknown, errnoRet: unknown, where: string, errnoWhere: string): SeccompAction {
  const takesErrno = action === "SCMP_ACT_ERRNO" || action === "SCMP_ACT_TRACE";
  if (errnoRet !== undefined && errnoRet !== null && !takesErrno) {
    _parseAction(action, 0, where, _ociFail); // an unknown action is the first thing to say
    throw _ociFail(errnoWhere, {
      kind: "value",
      problem: `${String(action)} takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)`,
    });
  }
  const ret = errnoRet === undefined || errnoRet === null ? EPERM : _ociErrno(errnoRet, errnoWhere);
  return _parseAction(action, ret, where, _ociFail);
}

/**
 * A profile from the runtime spec's `linux.seccomp` object (config.json),
 * ready for compileProfile. What podman and Docker send works: default
 * SCMP_ACT_ERRNO with `defaultErrnoRet` (ENOSYS), rules with `errnoRet`,
 * syscall names this libseccomp does not know (skipped when compiling, as
 * runc does). What gcr cannot apply is refused with an Error whose message
 * starts with the field: SCMP_ACT_NOTIFY and `listenerPath`, `flags` other
 * than SECCOMP_FILTER_FLAG_TSYNC, unknown fields.
 *
 * @example
 * ```ts
 * const bpf = compileProfile(profileFromOci(config.linux.seccomp));
 * ```
 */
export function profileFromOci(profile: unknown): SeccompProfile {
  const fail = _ociFail;
  if (!isObject(profile)) throw fail("", { kind: "value", problem: "not an object" });
  _onlyFields(profile, OCI_FIELDS, "", fail);
  if (profile.defaultAction === undefined) throw fail("defaultAction", { kind: "value", problem: "missing" });
  const defaultAction = _ociAction(profile.defaultAction, profile.defaultErrnoRet, "defaultAction", "defaultErrnoRet");

  // A listener gets the notify fd of SCMP_ACT_NOTIFY rules; gcr installs no such rule.
  for (const field of ["listenerPath", "listenerMetadata"] as const) {
    const value = profile[field];
    if (value === undefined || value === null || value === "") continue;
    if (typeof value !== "string") throw fail(field, { kind: "value", problem: "not a string" });
    throw fail(field, { kind: "value", problem: `${JSON.stringify(value)}: gcr has no seccomp listener` });
  }

  const flags = profile.flags ?? [];
  if (!Array.isArray(flags)) throw fail("flags", { kind: "value", problem: "not an array" });
  for (const [i, flag] of flags.entries()) {
    const known = typeof flag === "string" && Object.hasOwn(OCI_FLAGS, flag) ? OCI_FLAGS[flag] : undefined;
    if (!known) throw fail(`flags[${i}]`, { kind: "value", problem: `${JSON.stringify(flag)} is not a seccomp flag` });
    if ("why" in known) throw fail(`flags[${i}]`, { kind: "value", problem: `${flag} is not supported: ${known.why}` });
  }

  const architectures: string[] = [];
  const arches = profile.architectures ?? [];
  if (!Array.isArray(arches)) throw fail("architectures", { kind: "value", problem: "not an array" });
  for (const [i, arch] of arches.entries()) {
    const where = `architectures[${i}]`;
    if (typeof arch !== "string" || !/^SCMP_ARCH_[A-Z0-9_]+$/.test(arch)) {
      throw fail(where, { kind: "value", problem: `${JSON.stringify(arch)} is not an SCMP_ARCH_* name` });
    }
    // Checked now, so the error names the field rather than surfacing from compileProfile.
    const name = archName(arch);
    if (seccomp().seccomp_arch_resolve_name(cString(name)) === 0) {
      throw fail(where, { kind: "value", problem: `${arch} is not known to this libseccomp` });
    }
    architectures.push(name);
  }

  const rules: SeccompRule[] = [];
  const syscalls = profile.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw fail("syscalls", { kind: "value", problem: "not an array" });
  for (const [i, rule] of syscalls.entries()) {
    const where = `syscalls[${i}]`;
    if (!isObject(rule)) throw fail(where, { kind: "value", problem: "not an object" });
    _onlyFields(rule, OCI_RULE_FIELDS, where, fail);
    const names = _parseNames(rule.names, `${where}.names`, fail);
    if (names.length === 0) throw fail(`${where}.names`, { kind: "value", problem: "empty (at least one name)" });
    const action = _ociAction(rule.action, rule.errnoRet, `${where}.action`, `${where}.errnoRet`);
    rules.push({ names, action, args: _parseArgs(rule.args, `${where}.args`, fail) });
  }
  return { defaultAction, architectures, rules };
}

// ---------------------------------------------------------------------------
// Compiling to BPF

function argArray(args: readonly ArgComparison[]): Uint8Array | null {
  if (!args.length) return null;
  const bytes = new Uint8Array(args.length * ARG_CMP.size);
  const view = new DataView(bytes.buffer);
  args.forEach((arg, i) => {
    const base = i * ARG_CMP.size;
    view.setUint32(base + ARG_CMP.arg, arg.index, true);
    view.setUint32(base + ARG_CMP.op, COMPARISONS[arg.op], true);
    view.setBigUint64(base + ARG_CMP.datum_a, arg.value, true);
    view.setBigUint64(base + ARG_CMP.datum_b, arg.valueTwo, true);
  });
  return bytes;
}

/** Reads everything written to `fd` so far, through a fresh open of /proc/self/fd (offset 0). */
function readBack(fd: number): Uint8Array {
  return Deno.readFileSync(`/proc/self/fd/${fd}`);
}

/**
 * Compiles `profile` into a classic BPF program (struct sock_filter[], 8
 * bytes each) with libseccomp. Syscall names this libseccomp does not know
 * are skipped, as runc does; rules whose action is the default action are
 * left out (libseccomp refuses them); a rule with several comparisons on one
 * argument becomes one rule per comparison, as in runc.
 */
export function compileProfile(profile: SeccompProfile): Uint8Array {
  const lib = seccomp();
  const defaultValue = actionValue(profile.defaultAction);
  const ctx = lib.seccomp_init(defaultValue);
  if (!ctx) throw new Error(`seccomp_init(${showAction(profile.defaultAction)}) failed`);
  try {
    for (const name of profile.architectures) {
      const token = lib.seccomp_arch_resolve_name(cString(name));
      if (token === 0) throw new Error(`Unknown seccomp architecture ${JSON.stringify(name)}`);
      const result = lib.seccomp_arch_add(ctx, token);
      if (result !== -17) checkSeccomp(result, `seccomp_arch_add(${name})`); // EEXIST: the native one
    }
    for (const rule of profile.rules) {
      const action = actionValue(rule.action);
      if (action === defaultValue) continue;
      // libseccomp refuses two comparisons on one argument in a rule; runc
      // then adds one rule per comparison (so they match if any holds), and
      // gcr does the same, so a profile written for runc means the same here.
      const indexes = rule.args.map((arg) => arg.index);
      const groups = new Set(indexes).size < indexes.length ? rule.args.map((arg) => [arg]) : [rule.args];
      for (const group of groups) {
        const args = argArray(group);
        for (const name of rule.names) {
          const number = lib.seccomp_syscall_resolve_name(cString(name));
          if (number === -1) continue; // __NR_SCMP_ERROR: unknown to this libseccomp
          checkSeccomp(
            lib.seccomp_rule_add_array(ctx, action, number, group.length, args),
            `seccomp_rule_add_array(${name}, ${showAction(rule.action)}, ${group.length} comparisons)`,
          );
        }
      }
    }
    const fd = libc().memfd_create(cString("gcr-seccomp"), MFD_CLOEXEC);
    if (fd < 0) throw new Error(`memfd_create("gcr-seccomp"): ${errnoName(lastErrno())}`);
    try {
      checkSeccomp(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf");
      return readBack(fd);
    } finally {
      libc().close(fd);
    }
  } finally {
    lib.seccomp_release(ctx);
  }
}

/** `--security-opt seccomp=unconfined`: no filter at all. */
export const UNCONFINED = "unconfined";

/**
 * The BPF program for `--security-opt seccomp=…`: `undefined` (not given)
 * is gcr's default profile, `unconfined` is no filter (returns undefined),
 * anything else a path to a profile in Docker's JSON format.
 */
export function seccompProgram(option: string | undefined, caps: ReadonlySet<number>): Uint8Array | undefined {
  if (option === UNCONFINED) return undefined;
  if (option === undefined) return cachedCompile(defaultProfile(caps));
  let text: string;
  try {
    text = Deno.readTextFileSync(option);
  } catch (error) {
    throw new Error(`Cannot read seccomp profile ${option}: ${(error as Error).message}`);
  }
  try {
    return cachedCompile(loadProfile(text, caps));
  } catch (error) {
    throw new Error(`Seccomp profile ${option}: ${(error as Error).message}`);
  }
}

/** Where compiled filters are kept: gcr's cache folder, as for image blobs. */
function filterCacheDir(): string {
  const root = Deno.env.get("GCR_CACHE") ??
    ((Deno.uid() ?? 0) === 0
      ? "/var/cache/gcr"
      : `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`}/gcr`);
  return `${root}/seccomp`;
}

/**
 * FNV-1a, 32 bits, over the length and every 7th character: a file name for
 * a profile, not a check (the file holds the whole profile, compared before
 * use, so two profiles sharing a name only cost a recompile). All of a 10 KB
 * profile took 3 ms of every start.
 */
function fileName(text: string): string {
  let hash = Math.imul(0x811c9dc5 ^ text.length, 0x01000193);
  for (let i = 0; i < text.length; i += 7) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/**
 * compileProfile, remembered: building a filter through libseccomp costs
 * ~7 ms of every container start (hundreds of cold FFI calls), and the same
 * profile always compiles to the same program. A cache file holds the
 * profile as JSON and then the program; it is used only when that JSON is
 * exactly this profile's, and only from a folder no other user can write
 * (a filter from elsewhere could be a weaker one).
 */
export function cachedCompile(profile: SeccompProfile): Uint8Array {
  // Argument comparisons hold BigInts; the architecture is part of the key.
  const json = JSON.stringify({ arch: Deno.build.arch, profile }, (_, v) => typeof v === "bigint" ? `${v}n` : v);
  const dir = filterCacheDir();
  const path = `${dir}/${fileName(json)}.bpf`;
  const trusted = (() => {
    try {
      const info = Deno.statSync(dir);
      return info.uid === (Deno.uid() ?? 0) && ((info.mode ?? 0) & 0o022) === 0;
    } catch {
      return false;
    }
  })();
  const header = new TextEncoder().encode(json);
  if (trusted) {
    try {
      const file = Deno.readFileSync(path);
      const length = new DataView(file.buffer, file.byteOffset).getUint32(0, true);
      if (length === header.length && new TextDecoder().decode(file.subarray(4, 4 + length)) === json) {
        return file.slice(4 + length);
      }
    } catch { /* not cached yet */ }
  }
  const program = compileProfile(profile);
  try {
    if (!trusted) {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const info = Deno.statSync(dir);
      if (info.uid !== (Deno.uid() ?? 0) || ((info.mode ?? 0) & 0o022) !== 0) return program;
    }
    const entry = new Uint8Array(4 + header.length + program.length);
    new DataView(entry.buffer).setUint32(0, header.length, true);
    entry.set(header, 4);
    entry.set(program, 4 + header.length);
    const temporary = `${path}.${Deno.pid}.tmp`;
    Deno.writeFileSync(temporary, entry, { mode: 0o600 });
    Deno.renameSync(temporary, path);
  } catch { /* a cache we cannot write: compile every time */ }
  return program;
}
