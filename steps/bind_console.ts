import { MS, S_IFREG } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, NULL, num, type Step } from "./step.ts";

/**
 * gcr's terminal, bound at /dev/console. The container shares gcr's
 * terminal, a pty of the host's devpts, which the container's own devpts
 * does not show: ttyname() (and so `tty`, sudo, ssh) would fail. glibc's
 * ttyname falls back to looking through /dev for the same inode, so the pty
 * bound there is found, as runc binds a container's console.
 */
export function bindConsole(plan: Pick<ContainerPlan, "root"> & { readonly console: string }): Step {
  const target = `${plan.root}/dev/console`;
  return {
    name: "bind-console",
    why: `gcr's terminal (${plan.console}) at /dev/console, so that ttyname() finds it in the container`,
    parent: [],
    child: [
      call("mknod", target, num(S_IFREG | 0o600, "S_IFREG|0600"), 0),
      call("mount", plan.console, target, NULL, flags(MS, "MS_", ["BIND"]), NULL),
    ],
  };
}
