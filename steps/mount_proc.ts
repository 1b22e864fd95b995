import { MS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, NULL, type Step } from "./step.ts";

/**
 * A proc filesystem for the new PID namespace, so `ps` and /proc/self show
 * the container's processes. Mounted before the pivot, while the host's
 * /proc is still visible: the kernel allows a new proc mount in a user
 * namespace only where an unobscured proc is already mounted.
 */
export function mountProc(plan: ContainerPlan): Step {
  return {
    name: "mount-proc",
    why: "a proc filesystem that shows the container's PID namespace, not the host's",
    parent: [],
    child: [
      call("mount", "proc", `${plan.root}/proc`, "proc", flags(MS, "MS_", ["NOSUID", "NODEV", "NOEXEC"]), NULL),
    ],
  };
}
