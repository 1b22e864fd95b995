import { MS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, type Step } from "./step.ts";

/**
 * An empty tmpfs on /dev, so the container sees only the devices gcr puts
 * there, never the host's /dev.
 */
export function mountDev(plan: ContainerPlan): Step {
  return {
    name: "mount-dev",
    why: "an empty /dev of the container's own; the next steps add only safe devices to it",
    parent: [],
    child: [
      call(
        "mount",
        "tmpfs",
        `${plan.root}/dev`,
        "tmpfs",
        flags(MS, "MS_", ["NOSUID", "STRICTATIME"]),
        "mode=755,size=65536k",
      ),
    ],
  };
}
