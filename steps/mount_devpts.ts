import { MS } from "../ffi/constants.ts";
import { mkdirInRoot, mountInRoot, type RootFd } from "./in_root.ts";
import type { ContainerPlan } from "./plan.ts";
import { type Step } from "./step.ts";

/**
 * A new devpts instance, so ptys made in the container are its own and the
 * host's are invisible. `gid=5` (tty) only when group 5 is mapped: the
 * kernel refuses an unmapped gid.
 */
export function mountDevpts(plan: Pick<ContainerPlan, "ids">, fd: RootFd): Step {
  const ttyMapped = plan.ids.gid.some((m) => m.inside <= 5 && 5 < m.inside + m.count);
  const options = `newinstance,ptmxmode=0666,mode=0620${ttyMapped ? ",gid=5" : ""}`;
  return {
    name: "mount-devpts",
    why: "a private pseudo-terminal instance: ptys opened in the container are not the host's",
    parent: [],
    child: [
      ...mkdirInRoot(fd, "/dev/pts", 0o755),
      ...mountInRoot(fd, "/dev/pts", { source: "devpts", type: "devpts", flags: MS.NOSUID | MS.NOEXEC, data: options }),
    ],
  };
}
