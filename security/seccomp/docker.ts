/**
 * Docker's side of seccomp: `--security-opt seccomp=…` (seccompProgram) and
 * the profile JSON it names (loadProfile), in the format of Docker's
 * default.json and containers-common's seccomp.json.
 *
 * @module
 */
import { ERRNO } from "../../ffi/constants.ts";
import { errnoName } from "../../ffi/errno.ts";
import { capabilityNumber } from "../../ffi/capabilities.ts";
import { cachedCompile } from "./cache.ts";
import { defaultProfile, type SeccompProfile, type SeccompRule } from "./profile.ts";
import { archName, type Fail, parseAction, parseArgs, parseNames, refuseUnsupported, syscallRules } from "./read.ts";

import { isObject } from "../../host/json.ts";
const { EPERM } = ERRNO;

/** Docker's profile: the wording `--security-opt seccomp=…` users have seen so far. */
const _dockerFail: Fail = (where, fault) => {
  switch (fault.kind) {
    case "action":
      return new Error(`Unknown seccomp profile action at ${where}: ${JSON.stringify(fault.name)}`);
    case "notify":
      return new Error(`Unsupported seccomp profile action at ${where}: SCMP_ACT_NOTIFY (gcr has no listener)`);
    case "value":
      return new Error(`Invalid seccomp profile${where ? ` ${where}` : ""}: ${fault.problem}`);
  }
};

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
  refuseUnsupported(profile, fail);
  const defaultRet = errnoOf(profile.defaultErrnoRet, profile.defaultErrno, EPERM, "defaultErrno");
  const defaultAction = parseAction(profile.defaultAction, defaultRet, "defaultAction", fail);

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
      // Only the entry for this machine counts: its 32-bit companions join it.
      if (archName(entry.architecture) !== "x86_64") continue;
      const subs = Array.isArray(entry.subArchitectures) ? entry.subArchitectures : [];
      architectures.push(...subs.map(archName));
    }
  }

  const rules: SeccompRule[] = [];
  for (const [rule, where] of syscallRules(profile, fail)) {
    const names = parseNames(rule.names ?? (rule.name === undefined ? [] : [rule.name]), `${where}.names`, fail);
    // A rule's errno defaults to EPERM, not to defaultErrnoRet (as in runc).
    const ret = errnoOf(rule.errnoRet, rule.errno, rule.action === "SCMP_ACT_TRACE" ? 0 : EPERM, `${where}.errno`);
    const action = parseAction(rule.action, ret, `${where}.action`, fail);
    const args = parseArgs(rule.args, `${where}.args`, fail);
    if (rule.includes !== undefined && !filterMatches(rule.includes, caps, `${where}.includes`, "all")) continue;
    if (rule.excludes !== undefined && filterMatches(rule.excludes, caps, `${where}.excludes`, "any")) continue;
    rules.push({ names, action, args });
  }
  return { defaultAction, architectures, rules };
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
