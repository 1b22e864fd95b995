import { S_IFREG } from "../ffi/constants.ts";
import { bindInRoot, mknodInRoot, type RootFd } from "./in_root.ts";
import { type Step } from "./step.ts";

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
export function bindInit(plan: { readonly init: string }, fd: RootFd): Step {
  return {
    name: "bind-init",
    why: "a real init as pid 1 forwards signals to the command and reaps zombies (--init)",
    parent: [],
    child: [
      ...mknodInRoot(fd, INIT_PATH, { value: S_IFREG | 0o755, show: "S_IFREG|0755" }, 0n),
      ...bindInRoot(fd, plan.init, INIT_PATH, { recursive: false }),
    ],
  };
}
