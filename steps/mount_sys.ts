import { MS } from "../ffi/constants.ts";
import { bindTree } from "./bind_tree.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, NULL, type Step } from "./step.ts";

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
  if (plan.network !== "host") {
    return {
      name: "mount-sys",
      why: "a read-only sysfs of the container's own network namespace",
      parent: [],
      child: [call("mount", "sysfs", target, "sysfs", readOnly, NULL)],
    };
  }
  return {
    name: "mount-sys",
    why: "the host's /sys, read-only all the way down (sysfs cannot be mounted anew without a network namespace)",
    parent: [],
    child: bindTree("/sys", target, ["RDONLY", "NOSUID", "NODEV", "NOEXEC"]),
  };
}
