/**
 * config.json's process as gcr's security plan: capabilities, user,
 * no_new_privs, seccomp; the same for a process `gcr exec --process` adds.
 *
 * @module
 */

import { CAPABILITIES } from "../ffi/capabilities.ts";
import { cachedCompile } from "../security/seccomp/cache.ts";
import { type ContainerUser, type SecurityPlan } from "../steps/plan.ts";
import type { OciSpec } from "./spec/spec.ts";
import { fail } from "./spec/fields.ts";

/** The capabilities in gcr's own bounding set (/proc/self/status CapBnd). */
function ownBoundingSet(): number[] {
  const hex = Deno.readTextFileSync("/proc/self/status").match(/^CapBnd:\s*([0-9a-f]+)$/m)?.[1] ?? "0";
  const mask = BigInt(`0x${hex}`);
  return Object.values(CAPABILITIES).filter((cap) => (mask >> BigInt(cap)) & 1n);
}

/** config.json's process as gcr's security plan: capabilities, user, no_new_privs, seccomp. */
export function securityPlan(spec: Pick<OciSpec, "process" | "linux">, field = "process"): SecurityPlan {
  const { process } = spec;
  const caps = process.capabilities;
  // No capabilities in config.json: runc leaves the process its own, so gcr
  // keeps its own bounding set (not every capability: a host may lack some,
  // as this one lacks CAP_SYS_RESOURCE, and capset cannot add them).
  const keep = new Set(caps ? caps.bounding : ownBoundingSet());
  if (caps) {
    // gcr keeps one set for bounding, effective and permitted (as Docker's
    // defaults are); a process config.json gives fewer effective ones than
    // it may have is not something its chain can express.
    for (const set of ["effective", "permitted"] as const) {
      if (
        process.user.uid === 0 && (caps[set].length !== caps.bounding.length || caps[set].some((c) => !keep.has(c)))
      ) {
        fail(`${field}.capabilities.${set}`, "must equal the bounding set for a root process (gcr keeps one set)");
      }
    }
    // For uid 0 the kernel gives an exec'd program the whole bounding set
    // whatever the inheritable and ambient sets hold (capabilities(7): root's
    // file sets count as full), so sets within it change nothing there. For
    // another uid they would, and gcr does not raise ambient capabilities.
    for (const set of ["inheritable", "ambient"] as const) {
      if (caps[set].length && (process.user.uid !== 0 || caps[set].some((c) => !keep.has(c)))) {
        fail(`${field}.capabilities.${set}`, "is supported by gcr only for uid 0 and within the bounding set");
      }
    }
  }
  const env = new Map(process.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  const { uid, gid, additionalGids } = process.user;
  const user: ContainerUser | undefined = uid !== 0 || gid !== 0 || additionalGids.length
    ? { uid, gid, groups: additionalGids, home: env.get("HOME") ?? "/" }
    : undefined;
  let seccomp: Uint8Array | undefined;
  if (spec.linux.seccomp) seccomp = cachedCompile(spec.linux.seccomp);
  return {
    capabilities: keep,
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
  return { capabilities: new Set(ownBoundingSet()), noNewPrivs: false, maskPaths: false };
}
