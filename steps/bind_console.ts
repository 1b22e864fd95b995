import { S_IFREG } from "../ffi/constants.ts";
import { bindInRoot, mknodInRoot, type RootFd } from "./in_root.ts";
import { type Step } from "./step.ts";

/**
 * gcr's terminal, bound at /dev/console. The container shares gcr's
 * terminal, a pty of the host's devpts, which the container's own devpts
 * does not show: ttyname() (and so `tty`, sudo, ssh) would fail. glibc's
 * ttyname falls back to looking through /dev for the same inode, so the pty
 * bound there is found, as runc binds a container's console.
 */
export function bindConsole(plan: { readonly console: string }, fd: RootFd): Step {
  return {
    name: "bind-console",
    why: `gcr's terminal (${plan.console}) at /dev/console, so that ttyname() finds it in the container`,
    parent: [],
    child: [
      ...mknodInRoot(fd, "/dev/console", { value: S_IFREG | 0o600, show: "S_IFREG|0600" }, 0n),
      ...bindInRoot(fd, plan.console, "/dev/console", { recursive: false }),
    ],
  };
}
