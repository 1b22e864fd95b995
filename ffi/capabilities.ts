/**
 * The kernel's capabilities (linux/capability.h): their numbers and names,
 * as a set's 64-bit mask, and the highest one this kernel has.
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
