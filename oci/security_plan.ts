/**
 * config.json's process as gcr's security plan: capabilities, user,
 * no_new_privs, seccomp; the same for a process `gcr exec --process` adds.
 *
 * @module
 */

import { CAPABILITIES, capabilityName } from "../ffi/capabilities.ts";
import { cachedCompile } from "../security/seccomp/cache.ts";
import { type CapabilitySets, type ContainerUser, type SecurityPlan, singleSet } from "../steps/plan.ts";
import type { OciSpec } from "./spec/spec.ts";
import type { OciCapabilities } from "./spec/process.ts";
import { fail } from "./spec/fields.ts";

/** The capabilities in gcr's own bounding set (/proc/self/status CapBnd). */
function ownBoundingSet(): number[] {
  const hex = Deno.readTextFileSync("/proc/self/status").match(/^CapBnd:\s*([0-9a-f]+)$/m)?.[1] ?? "0";
  const mask = BigInt(`0x${hex}`);
  return Object.values(CAPABILITIES).filter((cap) => (mask >> BigInt(cap)) & 1n);
}

/**
 * config.json's five capability sets, refused by field where the kernel
 * would refuse them midway through the chain (capset(2), prctl(2)), so that
 * nothing is started for them. With the bounding set dropped first and the
 * process's own inheritable set empty (a new or joined user namespace gives
 * none), what capset and PR_CAP_AMBIENT_RAISE require of the sets reduces
 * to: effective within permitted, inheritable within bounding, ambient
 * within both permitted and inheritable. runc fails at capset for the
 * first two, so gcr refuses them for any uid.
 *
 * An ambient capability that is not both permitted and inheritable runc
 * only warns about (libcontainer/capabilities ApplyCaps) and starts the
 * process without it, and Debian's runc 1.1 writes such sets itself: `runc
 * spec` gives ambient capabilities and no inheritable set. For uid 0 gcr
 * does as runc, leaving it out of the ambient set: the kernel gives root's
 * exec its bounding and inheritable sets whatever the ambient set holds, so
 * nothing the command can do changes. For another uid the ambient set is
 * all the command execs with, so one that cannot be raised would be a
 * capability config.json promises and the process silently lacks: refused.
 */
function capabilitySets(caps: OciCapabilities, uid: number, field: string): CapabilitySets {
  const sets = {
    bounding: new Set(caps.bounding),
    effective: new Set(caps.effective),
    permitted: new Set(caps.permitted),
    inheritable: new Set(caps.inheritable),
    ambient: new Set(caps.ambient),
  };
  const within = (set: keyof CapabilitySets, outer: readonly (keyof CapabilitySets)[], rule: string) => {
    for (const cap of caps[set]) {
      const lacking = outer.filter((name) => !sets[name].has(cap));
      if (lacking.length) {
        fail(
          `${field}.capabilities.${set}`,
          `holds ${capabilityName(cap)}, which ${
            lacking.map((name) => `${field}.capabilities.${name}`).join(" and ")
          } ${lacking.length > 1 ? "lack" : "lacks"}: ${rule}`,
        );
      }
    }
  };
  within("effective", ["permitted"], "only a permitted capability can be effective (capset(2))");
  within(
    "inheritable",
    ["bounding"],
    "the kernel adds an inheritable capability only from the bounding set (capset(2))",
  );
  if (uid !== 0) {
    within(
      "ambient",
      ["permitted", "inheritable"],
      `the kernel raises an ambient capability only when it is both permitted and inheritable (PR_CAP_AMBIENT_RAISE, ` +
        `prctl(2)), and uid ${uid} would exec without it`,
    );
  }
  const raisable = caps.ambient.filter((cap) => sets.permitted.has(cap) && sets.inheritable.has(cap));
  return { ...sets, ambient: new Set(raisable) };
}

/** config.json's process as gcr's security plan: capabilities, user, no_new_privs, seccomp. */
export function securityPlan(spec: Pick<OciSpec, "process" | "linux">, field = "process"): SecurityPlan {
  const { process } = spec;
  // No capabilities in config.json: runc leaves the process its own, so gcr
  // keeps its own bounding set (not every capability: a host may lack some,
  // as this one lacks CAP_SYS_RESOURCE, and capset cannot add them), in
  // Docker's shape (steps/plan.ts, singleSet).
  const capabilities = process.capabilities
    ? capabilitySets(process.capabilities, process.user.uid, field)
    : singleSet(ownBoundingSet());
  const env = new Map(process.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  const { uid, gid, additionalGids } = process.user;
  const user: ContainerUser | undefined = uid !== 0 || gid !== 0 || additionalGids.length
    ? { uid, gid, groups: additionalGids, home: env.get("HOME") ?? "/" }
    : undefined;
  let seccomp: Uint8Array | undefined;
  if (spec.linux.seccomp) seccomp = cachedCompile(spec.linux.seccomp);
  return {
    capabilities,
    noNewPrivs: process.noNewPrivileges,
    maskPaths: false,
    ...(user ? { user } : {}),
    ...(seccomp ? { seccomp } : {}),
  };
}

/**
 * What a process gcr starts during setup has (a createContainer hook, run
 * as runc runs it from its init before anything is dropped): root, gcr's
 * own bounding set, no no_new_privs, no filter.
 */
export function setupSecurity(): SecurityPlan {
  return { capabilities: singleSet(ownBoundingSet()), noNewPrivs: false, maskPaths: false };
}
