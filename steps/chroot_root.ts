/**
 * The root of a container without a mount namespace of its own: chroot,
 * as runc does there. pivot_root would swap the host's root; chroot leaves
 * the host's mounts as they are and only changes what this process sees.
 *
 * @module
 */
import { closeRoot, type RootFd } from "./in_root.ts";
import { call, type Step } from "./step.ts";

/** chroot into the rootfs: for a config.json whose namespaces leave out mount. */
export function chrootRoot(root: string, fd: RootFd): Step {
  return {
    name: "chroot-root",
    why: "config.json gives the container no mount namespace: chroot into the rootfs, the host's mounts untouched",
    parent: [],
    child: [
      ...closeRoot(fd),
      call("chdir", root),
      call("chroot", "."),
      call("chdir", "/"),
    ],
  };
}
