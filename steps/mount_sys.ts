import { AT_FDCWD, AT_RECURSIVE, LAYOUT, MOUNT_ATTR, MS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, NULL, num, shown, type Step } from "./step.ts";

/**
 * A read-only /sys. With its own network namespace the container may mount
 * a fresh sysfs (the kernel allows it in a user namespace only then). With
 * the host's network it gets the host's /sys, bound recursively and made
 * read-only with mount_setattr(AT_RECURSIVE): a plain read-only remount
 * would leave the submounts (cgroup, bpf, …) writable.
 */
export function mountSys(plan: ContainerPlan): Step {
  const target = `${plan.root}/sys`;
  const readOnly = flags(MS, "MS_", ["RDONLY", "NOSUID", "NODEV", "NOEXEC"]);
  if (plan.network === "none") {
    return {
      name: "mount-sys",
      why: "a read-only sysfs of the container's own network namespace",
      parent: [],
      child: [call("mount", "sysfs", target, "sysfs", readOnly, NULL)],
    };
  }
  const attr = new Uint8Array(LAYOUT.mount_attr.size);
  const attrSet = flags(MOUNT_ATTR, "MOUNT_ATTR_", ["RDONLY", "NOSUID", "NODEV", "NOEXEC"]);
  new DataView(attr.buffer).setBigUint64(LAYOUT.mount_attr.attr_set, BigInt(attrSet.value as number), true);
  return {
    name: "mount-sys",
    why: "the host's /sys, read-only all the way down (sysfs cannot be mounted anew without a network namespace)",
    parent: [],
    child: [
      call("mount", "/sys", target, NULL, flags(MS, "MS_", ["BIND", "REC"]), NULL),
      call(
        "mount_setattr",
        num(AT_FDCWD, "AT_FDCWD"),
        target,
        num(AT_RECURSIVE, "AT_RECURSIVE"),
        shown({ bytes: attr }, `{attr_set=${attrSet.show}}`),
        LAYOUT.mount_attr.size,
      ),
    ],
  };
}
