import { MS } from "../ffi/constants.ts";
import { mountInRoot, type RootFd } from "./in_root.ts";
import { type Step } from "./step.ts";

/** A scratch /tmp that vanishes with the container, as in the Go original. */
export function mountTmp(fd: RootFd): Step {
  return {
    name: "mount-tmp",
    why: "scratch space that is gone when the container ends and never lands in the rootfs folder",
    parent: [],
    child: mountInRoot(fd, "/tmp", { source: "tmpfs", type: "tmpfs", flags: MS.NOSUID | MS.NODEV, data: "mode=1777" }),
  };
}
