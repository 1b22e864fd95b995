import { MS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, type Step } from "./step.ts";

/** A scratch /tmp that vanishes with the container, as in the Go original. */
export function mountTmp(plan: ContainerPlan): Step {
  return {
    name: "mount-tmp",
    why: "scratch space that is gone when the container ends and never lands in the rootfs folder",
    parent: [],
    child: [call("mount", "tmpfs", `${plan.root}/tmp`, "tmpfs", flags(MS, "MS_", ["NOSUID", "NODEV"]), "mode=1777")],
  };
}
