/**
 * Reading profiles: what Docker's JSON (./docker.ts) and the runtime spec's
 * `linux.seccomp` (./oci.ts) share.
 *
 * Both formats share actions, comparisons and argument rules, so one set of
 * readers serves both; they differ in how an error reads (Docker's names the
 * profile file's field, the runtime spec's the path in config.json), so the
 * readers take the format's way of wording a fault.
 *
 * @module
 */
import { ACTIONS, type ArgComparison, COMPARISONS, type SeccompAction } from "./profile.ts";
import { isObject } from "../../host/json.ts";

/**
 * What is wrong at a place in a profile; each format words it its own way.
 * A field neither format defines is no fault: the runtime spec says unknown
 * properties MUST be ignored, and Docker's Go decoder ignores them too.
 */
export type Fault =
  | { readonly kind: "action"; readonly name: unknown }
  | { readonly kind: "notify" }
  | { readonly kind: "value"; readonly problem: string };

/** Builds the error for a fault at `where` (a path inside the profile, `syscalls[3].action`). */
export type Fail = (where: string, fault: Fault) => Error;

/** An action by its libseccomp name; `ret` is the errno for SCMP_ACT_ERRNO and SCMP_ACT_TRACE. */
export function parseAction(name: unknown, ret: number, where: string, fail: Fail): SeccompAction {
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

function _parseUint64(value: unknown, where: string, fail: Fail): bigint {
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

/**
 * A rule's argument comparisons. An absent `value`/`valueTwo` is 0, as
 * runc's Go structs read it.
 */
export function parseArgs(argsIn: unknown, where: string, fail: Fail): ArgComparison[] {
  const args = argsIn ?? [];
  if (!Array.isArray(args)) throw fail(where, { kind: "value", problem: "not an array" });
  return args.map((arg, j): ArgComparison => {
    const at = `${where}[${j}]`;
    if (!isObject(arg)) throw fail(at, { kind: "value", problem: "not an object" });
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

/**
 * The rules under `syscalls`, each an object with only `fields`, and the
 * place a fault in it is reported at (`syscalls[3]`). A generator, so that
 * a fault in a rule is still found before anything of the next rule is read.
 */
export function* syscallRules(
  profile: Record<string, unknown>,
  fail: Fail,
): Generator<[rule: Record<string, unknown>, where: string]> {
  const syscalls = profile.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw fail("syscalls", { kind: "value", problem: "not an array" });
  for (const [i, rule] of syscalls.entries()) {
    const where = `syscalls[${i}]`;
    if (!isObject(rule)) throw fail(where, { kind: "value", problem: "not an object" });
    yield [rule, where];
  }
}

/** A rule's syscall names: a list of strings (unknown names are skipped later, when compiling). */
export function parseNames(names: unknown, where: string, fail: Fail): string[] {
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
    throw fail(where, { kind: "value", problem: "not an array of strings" });
  }
  return names as string[];
}

/** `SCMP_ARCH_X86` → `x86`, as seccomp_arch_resolve_name takes it (Docker writes both forms). */
export const archName = (name: unknown) => String(name).replace(/^SCMP_ARCH_/, "").toLowerCase();

/**
 * The `flags` gcr honours, and why the others cannot be. The child
 * installs its filter with prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)
 * (steps/install_seccomp.ts), the equivalent of seccomp(SECCOMP_SET_MODE_FILTER,
 * 0, prog): there is no flags argument to pass them in.
 */
const FLAGS: Readonly<Record<string, { readonly ok: true } | { readonly why: string }>> = {
  // Synchronising the filter to all of the caller's threads is what
  // happens anyway: the child that installs it is single-threaded (a libc
  // clone running a ucontext chain, docs/design.md §2).
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

/**
 * What both formats may ask for and gcr's filter cannot do: a listener for
 * SCMP_ACT_NOTIFY, and seccomp(2) flags but TSYNC. Refused by field rather
 * than ignored: the container would run under another policy than asked.
 */
export function refuseUnsupported(profile: Record<string, unknown>, fail: Fail): void {
  for (const field of ["listenerPath", "listenerMetadata"] as const) {
    const value = profile[field];
    if (value === undefined || value === null || value === "") continue;
    if (typeof value !== "string") throw fail(field, { kind: "value", problem: "not a string" });
    throw fail(field, { kind: "value", problem: `${JSON.stringify(value)}: gcr has no seccomp listener` });
  }
  const flags = profile.flags ?? [];
  if (!Array.isArray(flags)) throw fail("flags", { kind: "value", problem: "not an array" });
  for (const [i, flag] of flags.entries()) {
    const known = typeof flag === "string" && Object.hasOwn(FLAGS, flag) ? FLAGS[flag] : undefined;
    if (!known) throw fail(`flags[${i}]`, { kind: "value", problem: `${JSON.stringify(flag)} is not a seccomp flag` });
    if ("why" in known) throw fail(`flags[${i}]`, { kind: "value", problem: `${flag} is not supported: ${known.why}` });
  }
}
