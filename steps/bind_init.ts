import { MS, S_IFREG } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, NULL, num, type Step } from "./step.ts";

/** Where the init lands inside the container: in its private /dev, never in the image. */
export const INIT_PATH = "/dev/init";

/**
 * `--init`: a small init (catatonit or tini, static, from the host) becomes
 * the container's pid 1 and runs the command as its child. A pid 1 that is
 * an ordinary program ignores SIGTERM and SIGINT unless it handles them (the
 * kernel protects a namespace's init), and never reaps orphans; a real init
 * forwards signals and reaps. It is bound onto an empty file in the
 * container's /dev tmpfs, so the image folder is untouched.
 */
export function bindInit(plan: ContainerPlan & { readonly init: string }): Step {
  const target = `${plan.root}${INIT_PATH}`;
  return {
    name: "bind-init",
    why: "a real init as pid 1 forwards signals to the command and reaps zombies (--init)",
    parent: [],
    child: [
      call("mknod", target, num(S_IFREG | 0o755, "S_IFREG|0755"), 0),
      call("mount", plan.init, target, NULL, flags(MS, "MS_", ["BIND"]), NULL),
    ],
  };
}
