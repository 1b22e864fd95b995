import { MS } from "../ffi/constants.ts";
import { mountInRoot, type RootFd } from "./in_root.ts";
import { type Step } from "./step.ts";

/**
 * An empty tmpfs on /dev, so the container sees only the devices gcr puts
 * there, never the host's /dev.
 */
export function mountDev(fd: RootFd): Step {
  return {
    name: "mount-dev",
    why: "an empty /dev of the container's own; the next steps add only safe devices to it",
    parent: [],
    child: mountInRoot(fd, "/dev", {
      source: "tmpfs",
      type: "tmpfs",
      flags: MS.NOSUID | MS.STRICTATIME,
      data: "mode=755,size=65536k",
    }),
  };
}
