import { MS } from "../ffi/constants.ts";
import { mountInRoot, type RootFd } from "./in_root.ts";
import { type Step } from "./step.ts";

/**
 * A proc filesystem for the new PID namespace, so `ps` and /proc/self show
 * the container's processes. Mounted before the pivot, while the host's
 * /proc is still visible: the kernel allows a new proc mount in a user
 * namespace only where an unobscured proc is already mounted. The image's
 * /proc must be an ordinary folder, as runc requires: through a symlink,
 * the container's /proc would be whatever the image put at the real path,
 * and gcr's masking of /proc would land elsewhere (CVE-2019-16884).
 */
export function mountProc(fd: RootFd): Step {
  return {
    name: "mount-proc",
    why: "a proc filesystem that shows the container's PID namespace, not the host's",
    parent: [],
    child: mountInRoot(
      fd,
      "/proc",
      { source: "proc", type: "proc", flags: MS.NOSUID | MS.NODEV | MS.NOEXEC, data: null },
      "no-symlinks",
    ),
  };
}
