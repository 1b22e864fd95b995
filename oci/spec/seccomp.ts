/**
 * Reads `linux.seccomp` ({@link OciSeccomp}) for its shape: actions,
 * architectures, flags and comparisons are checked to look like the names
 * the spec gives them (`SCMP_ACT_ERRNO`, `SCMP_ARCH_X86_64`) and kept as
 * written.
 *
 * Its own module because what those names mean is security/seccomp/oci.ts's
 * (profileFromOci turns the object into a filter); this one makes a
 * malformed profile fail with the other sections' errors, before any setup.
 *
 * @module
 */
import { asString, asUint32, asUint64, fail, Fields, integer, list, optionalEntry, type Read } from "./fields.ts";

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

export const asSeccomp: Read<OciSeccomp> = (value, path) => {
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
