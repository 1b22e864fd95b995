import { _LINUX_CAPABILITY_VERSION_3, LAYOUT, PR, SYS } from "../ffi/constants.ts";
import { CAPABILITIES, capabilityName, kernelLastCapability } from "../ffi/capabilities.ts";
import { call, num, rawSyscall, shown, type Step } from "./step.ts";

/** `{version=…, pid=0}` and two `{effective, permitted, inheritable}` halves (caps 0-31, 32-63), as capset takes them. */
function capsetArguments(effective: ReadonlySet<number>): { header: Uint8Array; data: Uint8Array } {
  const header = new Uint8Array(LAYOUT.cap_header.size);
  const h = new DataView(header.buffer);
  h.setUint32(LAYOUT.cap_header.version, _LINUX_CAPABILITY_VERSION_3, true);
  h.setInt32(LAYOUT.cap_header.pid, 0, true);
  const { cap_data } = LAYOUT;
  const data = new Uint8Array(2 * cap_data.size);
  const d = new DataView(data.buffer);
  for (const cap of effective) {
    const base = (cap >> 5) * cap_data.size;
    const bit = 1 << (cap & 31);
    d.setUint32(base + cap_data.effective, (d.getUint32(base + cap_data.effective, true) | bit) >>> 0, true);
    d.setUint32(base + cap_data.permitted, (d.getUint32(base + cap_data.permitted, true) | bit) >>> 0, true);
  }
  // Inheritable stays empty, as in Docker since 20.10 (CVE-2022-24769).
  return { header, data };
}

export interface DropCapabilitiesOptions {
  /**
   * The uid set-user switches to afterwards. When it is not 0, CAP_SETUID and
   * CAP_SETGID stay in the permitted and effective sets (not in the bounding
   * set) so that set-user can switch even with `--cap-drop SETUID`: the
   * kernel clears both sets anyway when every uid becomes non-zero.
   */
  readonly userUid?: number;
  /** The kernel's highest capability (default: /proc/sys/kernel/cap_last_cap); all above `keep` are dropped. */
  readonly lastCapability?: number;
}

/**
 * Reduces the capabilities of the container's first process to `keep` (from
 * `resolveCapabilities`): the bounding set (what any later exec can ever
 * get), the ambient set, and the effective and permitted sets. Root's
 * command then execs with exactly `keep`, as in Docker.
 *
 * Order within the step: PR_CAPBSET_DROP needs CAP_SETPCAP in the effective
 * set, so the bounding set goes before capset removes it.
 */
export function dropCapabilities(keep: ReadonlySet<number>, options: DropCapabilitiesOptions = {}): Step {
  const last = options.lastCapability ?? kernelLastCapability();
  const held = new Set(keep);
  if (options.userUid !== undefined && options.userUid !== 0) {
    held.add(CAPABILITIES.SETUID).add(CAPABILITIES.SETGID);
  }
  const bounding = [];
  for (let cap = 0; cap <= last; cap++) {
    if (keep.has(cap)) continue;
    bounding.push(
      call("prctl", num(PR.CAPBSET_DROP, "PR_CAPBSET_DROP"), num(cap, capabilityName(cap)), 0, 0, 0),
    );
  }
  const { header, data } = capsetArguments(held);
  const names = [...held].sort((a, b) => a - b).map(capabilityName).join("|") || "0";
  return {
    name: "drop-capabilities",
    why: "the command gets Docker's default capabilities (or those --cap-add/--cap-drop ask for), not all of them; " +
      "after every mount, pivot_root and umount, which need CAP_SYS_ADMIN, and before set-user",
    parent: [],
    child: [
      ...bounding,
      call(
        "prctl",
        num(PR.CAP_AMBIENT, "PR_CAP_AMBIENT"),
        num(PR.CAP_AMBIENT_CLEAR_ALL, "PR_CAP_AMBIENT_CLEAR_ALL"),
        0,
        0,
        0,
      ),
      rawSyscall(
        "capset",
        SYS.capset,
        shown({ bytes: header }, "{version=_LINUX_CAPABILITY_VERSION_3, pid=0}"),
        shown({ bytes: data }, `{effective=permitted=${names}, inheritable=0}`),
      ),
    ],
  };
}
