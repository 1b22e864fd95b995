import { MS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, NULL, type Step } from "./step.ts";

/** pivot_root(2) needs the new root to be a mount point: bind it onto itself. */
export function bindRootfs(plan: Pick<ContainerPlan, "root">): Step {
  return {
    name: "bind-rootfs",
    why: "pivot_root needs the new root to be a mount point; a bind mount onto itself makes it one",
    parent: [],
    child: [call("mount", plan.root, plan.root, NULL, flags(MS, "MS_", ["BIND", "REC"]), NULL)],
  };
}
