import { MS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, num, type Step } from "./step.ts";

/**
 * A new devpts instance, so ptys made in the container are its own and the
 * host's are invisible. `gid=5` (tty) only when group 5 is mapped: the
 * kernel refuses an unmapped gid.
 */
export function mountDevpts(plan: Pick<ContainerPlan, "root" | "ids">): Step {
  const ttyMapped = plan.ids.gid.some((m) => m.inside <= 5 && 5 < m.inside + m.count);
  const options = `newinstance,ptmxmode=0666,mode=0620${ttyMapped ? ",gid=5" : ""}`;
  return {
    name: "mount-devpts",
    why: "a private pseudo-terminal instance: ptys opened in the container are not the host's",
    parent: [],
    child: [
      call("mkdir", `${plan.root}/dev/pts`, num(0o755, "0755")),
      call("mount", "devpts", `${plan.root}/dev/pts`, "devpts", flags(MS, "MS_", ["NOSUID", "NOEXEC"]), options),
    ],
  };
}
