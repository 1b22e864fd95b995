/**
 * Capability names and numbers (linux/capability.h), Docker's default set,
 * and `--cap-add`/`--cap-drop` resolution.
 *
 * ```ts
 * const keep = resolveCapabilities(["NET_ADMIN"], ["chown"]);
 * keep.has(CAPABILITIES.NET_ADMIN); // true
 * ```
 *
 * @module
 */

/** Every capability this table knows, without the `CAP_` prefix, by number. */
export const CAPABILITIES = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  DAC_READ_SEARCH: 2,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  LINUX_IMMUTABLE: 9,
  NET_BIND_SERVICE: 10,
  NET_BROADCAST: 11,
  NET_ADMIN: 12,
  NET_RAW: 13,
  IPC_LOCK: 14,
  IPC_OWNER: 15,
  SYS_MODULE: 16,
  SYS_RAWIO: 17,
  SYS_CHROOT: 18,
  SYS_PTRACE: 19,
  SYS_PACCT: 20,
  SYS_ADMIN: 21,
  SYS_BOOT: 22,
  SYS_NICE: 23,
  SYS_RESOURCE: 24,
  SYS_TIME: 25,
  SYS_TTY_CONFIG: 26,
  MKNOD: 27,
  LEASE: 28,
  AUDIT_WRITE: 29,
  AUDIT_CONTROL: 30,
  SETFCAP: 31,
  MAC_OVERRIDE: 32,
  MAC_ADMIN: 33,
  SYSLOG: 34,
  WAKE_ALARM: 35,
  BLOCK_SUSPEND: 36,
  AUDIT_READ: 37,
  PERFMON: 38,
  BPF: 39,
  CHECKPOINT_RESTORE: 40,
} as const;

export type CapabilityName = keyof typeof CAPABILITIES;

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

const NAMES = new Map<number, CapabilityName>(
  Object.entries(CAPABILITIES).map(([name, number]) => [number, name as CapabilityName]),
);

/** `CAP_NET_ADMIN` for 12; `CAP_41` for a number this table does not know. */
export function capabilityName(number: number): string {
  const name = NAMES.get(number);
  return name ? `CAP_${name}` : `CAP_${number}`;
}

/** The number of `NET_ADMIN`, `cap_net_admin`, `CAP_NET_ADMIN`; throws for an unknown name. */
export function capabilityNumber(name: string): number {
  const key = name.trim().toUpperCase().replace(/^CAP_/, "");
  if (!(key in CAPABILITIES)) throw new Error(`Unknown capability: ${JSON.stringify(name)}`);
  return CAPABILITIES[key as CapabilityName];
}

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

/** A capability set as the 64-bit mask /proc/<pid>/status shows (`CapEff: 00000000a80425fb`). */
export function capabilityMask(caps: Iterable<number>): bigint {
  let mask = 0n;
  for (const cap of caps) mask |= 1n << BigInt(cap);
  return mask;
}

/** The kernel's highest capability number (/proc/sys/kernel/cap_last_cap), or this table's. */
export function kernelLastCapability(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim());
  } catch {
    return CAPABILITIES.CHECKPOINT_RESTORE;
  }
}
