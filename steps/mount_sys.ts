import { MOUNT_ATTR, MS } from "../ffi/constants.ts";
import { bindInRoot, mountInRoot, type RootFd } from "./in_root.ts";
import type { ContainerPlan } from "./plan.ts";
import { type Step } from "./step.ts";

/**
 * A read-only /sys. With its own network namespace the container may mount
 * a fresh sysfs (the kernel allows it in a user namespace only then). With
 * the host's network it gets the host's /sys, bound recursively and made
 * read-only on every mount of the tree before the tree is attached: a plain
 * read-only remount would leave the submounts (cgroup, bpf, …) writable.
 * Like /proc, /sys must be an ordinary folder in the image.
 */
export function mountSys(plan: Pick<ContainerPlan, "network">, fd: RootFd): Step {
  const readOnly = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC;
  if (plan.network !== "host") {
    return {
      name: "mount-sys",
      why: "a read-only sysfs of the container's own network namespace",
      parent: [],
      child: mountInRoot(fd, "/sys", { source: "sysfs", type: "sysfs", flags: readOnly, data: null }, "no-symlinks"),
    };
  }
  return {
    name: "mount-sys",
    why: "the host's /sys, read-only all the way down (sysfs cannot be mounted anew without a network namespace)",
    parent: [],
    child: bindInRoot(fd, "/sys", "/sys", {
      recursive: true,
      attributes: { set: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC },
      resolve: "no-symlinks",
    }),
  };
}
