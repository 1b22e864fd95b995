import { MS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, num, type Step } from "./step.ts";

/** POSIX shared memory (shm_open) lives in /dev/shm: a tmpfs of the container's own. */
export function mountShm(plan: ContainerPlan): Step {
  return {
    name: "mount-shm",
    why: "shm_open and semaphores need /dev/shm; the container gets its own 64 MiB tmpfs",
    parent: [],
    child: [
      call("mkdir", `${plan.root}/dev/shm`, num(0o1777, "01777")),
      call(
        "mount",
        "shm",
        `${plan.root}/dev/shm`,
        "tmpfs",
        flags(MS, "MS_", ["NOSUID", "NODEV", "NOEXEC"]),
        "mode=1777,size=65536k",
      ),
    ],
  };
}
