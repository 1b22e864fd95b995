/**
 * Seccomp profiles as data, and gcr's default one. A profile has the shape
 * of Docker's seccomp JSON (`defaultAction`, `syscalls[{names, action,
 * args}]`), whether gcr's built-in default (defaultProfile), one loaded with
 * `--security-opt seccomp=profile.json` (loadProfile, ./docker.ts) or the
 * `linux.seccomp` object of an OCI config.json (profileFromOci, ./oci.ts);
 * ./compile.ts turns it into the BPF program the child installs.
 *
 * ```ts
 * const caps = resolveCapabilities([], []);
 * const bpf = compileProfile(defaultProfile(caps)); // struct sock_filter[], 8 bytes each
 * ```
 *
 * @module
 */
import { ERRNO } from "../../ffi/constants.ts";
import { errnoName } from "../../ffi/errno.ts";
import { CAPABILITIES } from "../../ffi/capabilities.ts";

const { EPERM, ENOSYS } = ERRNO;

// ---------------------------------------------------------------------------
// Actions and comparisons (seccomp.h)

/**
 * The actions that carry no errno, with libseccomp's values: the readers
 * take a profile's action names from here, ./compile.ts the numbers.
 */
export const ACTIONS = {
  SCMP_ACT_KILL_PROCESS: 0x80000000,
  SCMP_ACT_KILL_THREAD: 0x00000000,
  SCMP_ACT_KILL: 0x00000000,
  SCMP_ACT_TRAP: 0x00030000,
  SCMP_ACT_LOG: 0x7ffc0000,
  SCMP_ACT_ALLOW: 0x7fff0000,
} as const;

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

/** As ACTIONS: the names for the readers, the numbers for ./compile.ts. */
export const COMPARISONS = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
} as const;

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
