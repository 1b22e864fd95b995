/**
 * Docker's default capability set, and `--cap-add`/`--cap-drop` resolution
 * against it (the kernel's numbers and names: ffi/capabilities.ts).
 *
 * ```ts
 * const keep = resolveCapabilities(["NET_ADMIN"], ["chown"]);
 * keep.has(CAPABILITIES.NET_ADMIN); // true
 * ```
 *
 * @module
 */
import { CAPABILITIES, type CapabilityName, capabilityNumber } from "../ffi/capabilities.ts";

/** Docker's (moby's `oci/caps/defaults.go`) default capabilities. */
export const DOCKER_DEFAULT_CAPABILITIES: readonly CapabilityName[] = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FSETID",
  "FOWNER",
  "MKNOD",
  "NET_RAW",
  "SETGID",
  "SETUID",
  "SETFCAP",
  "SETPCAP",
  "NET_BIND_SERVICE",
  "SYS_CHROOT",
  "KILL",
  "AUDIT_WRITE",
];

const isAll = (name: string) => /^(CAP_)?ALL$/i.test(name.trim());

/**
 * The capabilities a container keeps: Docker's defaults, then `drop`, then
 * `add` (so `--cap-drop ALL --cap-add CHOWN` keeps CHOWN alone, as in Docker).
 * Names are case-insensitive, with or without `CAP_`; `ALL` means every one.
 */
export function resolveCapabilities(add: readonly string[], drop: readonly string[]): Set<number> {
  const keep = new Set<number>(DOCKER_DEFAULT_CAPABILITIES.map((name) => CAPABILITIES[name]));
  // Check every name before using any, so one typo is reported whatever its place.
  const dropped = drop.map((name) => (isAll(name) ? "all" : capabilityNumber(name)));
  const added = add.map((name) => (isAll(name) ? "all" : capabilityNumber(name)));
  for (const cap of dropped) {
    if (cap === "all") keep.clear();
    else keep.delete(cap);
  }
  for (const cap of added) {
    if (cap === "all") Object.values(CAPABILITIES).forEach((n) => keep.add(n));
    else keep.add(cap);
  }
  return keep;
}
