import { type RootFd, symlinkInRoot } from "./in_root.ts";
import { type Step } from "./step.ts";

/** The symlinks programs expect in /dev (fd, stdin, stdout, stderr, ptmx). */
export const DEV_LINKS = [
  ["/proc/self/fd", "fd"],
  ["/proc/self/fd/0", "stdin"],
  ["/proc/self/fd/1", "stdout"],
  ["/proc/self/fd/2", "stderr"],
  ["pts/ptmx", "ptmx"],
] as const;

/** Links in /dev: the stdio names point into /proc, ptmx into the private devpts. */
export function linkDev(fd: RootFd): Step {
  return {
    name: "link-dev",
    why: "/dev/stdin, /dev/fd and friends point into /proc; /dev/ptmx must be the new devpts instance's",
    parent: [],
    child: DEV_LINKS.flatMap(([target, name]) => symlinkInRoot(fd, target, `/dev/${name}`)),
  };
}
