/**
 * The capability steps of the container's first process (and of one `gcr
 * exec` adds), in runc's order (libcontainer's finalizeNamespace):
 *
 * 1. drop-capabilities: PR_CAPBSET_DROP for every capability not in the
 *    bounding set. It needs CAP_SETPCAP in the effective set, which the
 *    process still has in full here (it is root of its user namespace, or
 *    a clone of gcr), and a non-zero uid would no longer have it.
 * 2. PR_SET_KEEPCAPS 1, when set-user is to switch to a non-zero uid: when
 *    a uid switch leaves no uid 0, the kernel clears the permitted set
 *    (capabilities(7), "Effect of user ID changes on capabilities") unless
 *    keep-caps is set, and capset can only ever take capabilities out of
 *    the permitted set, never put them back.
 * 3. set-user (steps/set_user.ts): setgroups, setresgid, setresuid, while
 *    the effective set is still whole, so that CAP_SETGID and CAP_SETUID
 *    are there even where the sets asked for lack them.
 * 4. set-capabilities: PR_SET_KEEPCAPS 0 (runc clears it again: no later
 *    call switches uids, and execve clears it anyway), the ambient set
 *    cleared, capset(effective, permitted, inheritable), then
 *    PR_CAP_AMBIENT_RAISE for each ambient capability.
 *
 * With no set-user, 1 and 4 are one step, drop-capabilities, without the
 * keep-caps calls: `gcr run`'s default chain has exactly the calls it had.
 *
 * @module
 */
import { _LINUX_CAPABILITY_VERSION_3, LAYOUT, PR, SYS } from "../ffi/constants.ts";
import { capabilityName, kernelLastCapability } from "../ffi/capabilities.ts";
import type { CapabilitySets } from "./plan.ts";
import type { ChildCall } from "../ffi/chain.ts";
import { call, num, rawSyscall, shown, type Step } from "./step.ts";

/** `CAP_CHOWN|CAP_KILL`, in number order; `0` for the empty set. */
export function capabilityNames(set: ReadonlySet<number>): string {
  return [...set].sort((a, b) => a - b).map(capabilityName).join("|") || "0";
}

/**
 * capset's data as the trace shows it: sets with the same members share one
 * entry, `{effective=permitted=CAP_CHOWN|CAP_KILL, inheritable=0}`.
 */
function showCapsetData(sets: CapabilitySets): string {
  const groups: { names: string[]; members: string }[] = [];
  for (const name of ["effective", "permitted", "inheritable"] as const) {
    const members = capabilityNames(sets[name]);
    const same = groups.find((group) => group.members === members);
    if (same) same.names.push(name);
    else groups.push({ names: [name], members });
  }
  return `{${groups.map((group) => `${group.names.join("=")}=${group.members}`).join(", ")}}`;
}

/** `{version=…, pid=0}` and two `{effective, permitted, inheritable}` halves (caps 0-31, 32-63), as capset takes them. */
function capsetArguments(sets: CapabilitySets): { header: Uint8Array; data: Uint8Array } {
  const header = new Uint8Array(LAYOUT.cap_header.size);
  const h = new DataView(header.buffer);
  h.setUint32(LAYOUT.cap_header.version, _LINUX_CAPABILITY_VERSION_3, true);
  h.setInt32(LAYOUT.cap_header.pid, 0, true);
  const { cap_data } = LAYOUT;
  const data = new Uint8Array(2 * cap_data.size);
  const d = new DataView(data.buffer);
  for (const name of ["effective", "permitted", "inheritable"] as const) {
    for (const cap of sets[name]) {
      const at = (cap >> 5) * cap_data.size + cap_data[name];
      d.setUint32(at, (d.getUint32(at, true) | (1 << (cap & 31))) >>> 0, true);
    }
  }
  return { header, data };
}

const prctl = (option: keyof typeof PR, ...args: Parameters<typeof num>[]) =>
  call(
    "prctl",
    num(PR[option], `PR_${option}`),
    ...args.map(([value, show]) => num(value, show)),
    ...Array<number>(4 - args.length).fill(0),
  );

/**
 * The effective, permitted, inheritable and ambient sets.
 *
 * The ambient set is cleared before capset rather than after it, as runc
 * does: the end is the same, since capset only ever takes capabilities out
 * of the ambient set (those no longer both permitted and inheritable), and
 * a process of gcr's may come with ambient capabilities of its own (a
 * config.json without a user namespace: a clone of gcr). The raises come
 * last: the kernel raises an ambient capability only when it is both
 * permitted and inheritable, which only capset makes it.
 */
function setSets(sets: CapabilitySets): ChildCall[] {
  const { header, data } = capsetArguments(sets);
  return [
    { ...prctl("CAP_AMBIENT", [PR.CAP_AMBIENT_CLEAR_ALL, "PR_CAP_AMBIENT_CLEAR_ALL"]), takesAway: true },
    rawSyscall(
      "capset",
      SYS.capset,
      shown({ bytes: header }, "{version=_LINUX_CAPABILITY_VERSION_3, pid=0}"),
      shown({ bytes: data }, showCapsetData(sets)),
    ),
    ...[...sets.ambient].sort((a, b) => a - b).map((cap) =>
      prctl("CAP_AMBIENT", [PR.CAP_AMBIENT_RAISE, "PR_CAP_AMBIENT_RAISE"], [cap, capabilityName(cap)])
    ),
  ];
}

export interface DropCapabilitiesOptions {
  /**
   * The uid set-user switches to after this step. Absent: no set-user
   * follows, and this one step sets all five sets. Present: this step drops
   * only the bounding set (and, for a non-zero uid, sets keep-caps), and
   * set-capabilities sets the rest after set-user.
   */
  readonly userUid?: number;
  /** The kernel's highest capability (default: /proc/sys/kernel/cap_last_cap); all above the bounding set are dropped. */
  readonly lastCapability?: number;
}

/**
 * Takes every capability not in `sets.bounding` out of the bounding set
 * (what any later exec can ever get), then, unless a user switch comes
 * between, sets the other four sets. After the last mount, pivot_root and
 * umount, which need CAP_SYS_ADMIN this may take away.
 */
export function dropCapabilities(sets: CapabilitySets, options: DropCapabilitiesOptions = {}): Step {
  const last = options.lastCapability ?? kernelLastCapability();
  const bounding = [];
  for (let cap = 0; cap <= last; cap++) {
    // Each drop only takes a capability away: a plain run reports them once (ffi/chain.ts).
    if (!sets.bounding.has(cap)) {
      bounding.push({ ...prctl("CAPBSET_DROP", [cap, capabilityName(cap)]), takesAway: true });
    }
  }
  const bounded = `the bounding set becomes ${capabilityNames(sets.bounding)}`;
  if (options.userUid === undefined) {
    return {
      name: "drop-capabilities",
      why: `the command gets only the capabilities asked for (Docker's defaults with --cap-add/--cap-drop, or ` +
        `config.json's sets): ${bounded}; after every mount, pivot_root and umount, which need CAP_SYS_ADMIN`,
      parent: [],
      child: [...bounding, ...setSets(sets)],
    };
  }
  const keepCaps = options.userUid !== 0;
  return {
    name: "drop-capabilities",
    why: `${bounded}; before set-user, since dropping needs CAP_SETPCAP` +
      (keepCaps ? `, and with keep-caps, so that the switch to uid ${options.userUid} keeps the permitted set` : "") +
      "; after every mount, pivot_root and umount, which need CAP_SYS_ADMIN",
    parent: [],
    child: [...bounding, ...(keepCaps ? [prctl("SET_KEEPCAPS", [1])] : [])],
  };
}

/**
 * After set-user: the effective, permitted, inheritable and ambient sets,
 * from what the switch left (the permitted set whole, kept by keep-caps;
 * the effective set, which the kernel cleared when uid 0 went, is raised
 * again from it by capset).
 */
export function setCapabilities(sets: CapabilitySets, options: { readonly userUid: number }): Step {
  const keepCaps = options.userUid !== 0;
  return {
    name: "set-capabilities",
    why: `uid ${options.userUid} gets the effective, permitted, inheritable and ambient sets asked for; after ` +
      "set-user, which needed CAP_SETUID and CAP_SETGID whatever these sets hold",
    parent: [],
    child: [...(keepCaps ? [prctl("SET_KEEPCAPS", [0])] : []), ...setSets(sets)],
  };
}
