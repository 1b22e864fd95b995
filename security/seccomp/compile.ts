/**
 * Compiling a profile into a classic BPF program with libseccomp (loaded
 * with Deno.dlopen on first use). gcr (the parent) builds the filter and
 * hands it to the child as plain bytes: the child only passes them to
 * prctl(PR_SET_SECCOMP) (steps/install_seccomp.ts), it cannot call
 * libseccomp (that mallocs).
 *
 * @module
 */
import { MFD_CLOEXEC } from "../../ffi/constants.ts";
import { errnoName, lastErrno } from "../../ffi/errno.ts";
import { libc } from "../../ffi/libc.ts";
import { cString } from "../../ffi/fds.ts";
import {
  ACTIONS,
  type ArgComparison,
  COMPARISONS,
  type SeccompAction,
  type SeccompProfile,
  showAction,
} from "./profile.ts";

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

/** libseccomp returns -errno. */
function checkSeccomp(result: number, call: string): void {
  if (result < 0) throw new Error(`${call}: ${errnoName(-result)}`);
}

/** libseccomp's token for an architecture name (`x86`); 0 when this libseccomp does not know it. */
export function archToken(name: string): number {
  return seccomp().seccomp_arch_resolve_name(cString(name));
}

// ---------------------------------------------------------------------------
// Actions and comparisons as libseccomp takes them (seccomp.h)

// SCMP_ACT_ERRNO(x) and SCMP_ACT_TRACE(x): the errno goes in the low 16 bits.
const ACT_ERRNO = 0x00050000;
const ACT_TRACE = 0x7ff00000;

/** struct scmp_arg_cmp: unsigned int arg; enum scmp_compare op; scmp_datum_t datum_a, datum_b. */
const ARG_CMP = { size: 24, arg: 0, op: 4, datum_a: 8, datum_b: 16 } as const;

function actionValue(action: SeccompAction): number {
  if ("ret" in action) {
    return ((action.action === "SCMP_ACT_ERRNO" ? ACT_ERRNO : ACT_TRACE) | (action.ret & 0xffff)) >>> 0;
  }
  return ACTIONS[action.action];
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
      const token = archToken(name);
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
