/**
 * The runtime spec's `linux.seccomp` (config-linux.md, "Seccomp") as a
 * profile: what `gcr create` compiles from config.json.
 *
 * @module
 */
import { ERRNO } from "../../ffi/constants.ts";
import { archToken } from "./compile.ts";
import type { SeccompAction, SeccompProfile, SeccompRule } from "./profile.ts";
import { archName, type Fail, parseAction, parseArgs, parseNames, refuseUnsupported, syscallRules } from "./read.ts";

import { isObject } from "../../host/json.ts";
const { EPERM } = ERRNO;

/** The runtime spec's: every message starts with the path in config.json, `linux.seccomp.flags[0]: …`. */
const _ociFail: Fail = (where, fault) => {
  const at = where ? `linux.seccomp.${where}` : "linux.seccomp";
  switch (fault.kind) {
    case "action":
      if (fault.name === undefined) return new Error(`${at}: missing (a seccomp action such as SCMP_ACT_ERRNO)`);
      return new Error(`${at}: ${JSON.stringify(fault.name)} is not a seccomp action`);
    case "notify":
      return new Error(`${at}: SCMP_ACT_NOTIFY is not supported (gcr has no seccomp listener)`);
    case "value":
      return new Error(`${at}: ${fault.problem}`);
  }
};

/**
 * A uint from config.json (errnoRet, defaultErrnoRet): 0-65535, since the
 * errno has only the low 16 bits of the filter's return value.
 */
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
    parseAction(action, 0, where, _ociFail); // an unknown action is the first thing to say
    throw _ociFail(errnoWhere, {
      kind: "value",
      problem: `${String(action)} takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)`,
    });
  }
  const ret = errnoRet === undefined || errnoRet === null ? EPERM : _ociErrno(errnoRet, errnoWhere);
  return parseAction(action, ret, where, _ociFail);
}

/**
 * A profile from the runtime spec's `linux.seccomp` object (config.json),
 * ready for compileProfile. What podman and Docker send works: default
 * SCMP_ACT_ERRNO with `defaultErrnoRet` (ENOSYS), rules with `errnoRet`,
 * syscall names this libseccomp does not know (skipped when compiling, as
 * runc does). What gcr cannot apply is refused with an Error whose message
 * starts with the field: SCMP_ACT_NOTIFY and `listenerPath`, `flags` other
 * than SECCOMP_FILTER_FLAG_TSYNC. Unknown fields are ignored, as the spec
 * requires.
 *
 * @example
 * ```ts
 * const bpf = compileProfile(profileFromOci(config.linux.seccomp));
 * ```
 */
export function profileFromOci(profile: unknown): SeccompProfile {
  const fail = _ociFail;
  if (!isObject(profile)) throw fail("", { kind: "value", problem: "not an object" });
  if (profile.defaultAction === undefined) throw fail("defaultAction", { kind: "value", problem: "missing" });
  const defaultAction = _ociAction(profile.defaultAction, profile.defaultErrnoRet, "defaultAction", "defaultErrnoRet");

  refuseUnsupported(profile, fail);

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
    if (archToken(name) === 0) {
      throw fail(where, { kind: "value", problem: `${arch} is not known to this libseccomp` });
    }
    architectures.push(name);
  }

  const rules: SeccompRule[] = [];
  for (const [rule, where] of syscallRules(profile, fail)) {
    const names = parseNames(rule.names, `${where}.names`, fail);
    if (names.length === 0) throw fail(`${where}.names`, { kind: "value", problem: "empty (at least one name)" });
    const action = _ociAction(rule.action, rule.errnoRet, `${where}.action`, `${where}.errnoRet`);
    rules.push({ names, action, args: parseArgs(rule.args, `${where}.args`, fail) });
  }
  return { defaultAction, architectures, rules };
}
