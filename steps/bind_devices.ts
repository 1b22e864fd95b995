import { S_IFREG } from "../ffi/constants.ts";
import { bindInRoot, mknodInRoot, type RootFd } from "./in_root.ts";
import { type Step } from "./step.ts";

/** The device nodes every program expects, as Docker and runc provide them. */
export const DEVICES = ["null", "zero", "full", "random", "urandom", "tty"] as const;

/**
 * Binds the host's device nodes into the new /dev. Creating them with mknod
 * would need CAP_MKNOD in the initial user namespace (not there rootless),
 * and the kernel marks a tmpfs mounted in a user namespace nodev anyway; a
 * bind mount keeps the host node and its mount's flags. mknod(S_IFREG) only
 * makes the empty file to bind onto.
 */
export function bindDevices(fd: RootFd): Step {
  return {
    name: "bind-devices",
    why:
      "null, zero, full, random, urandom and tty, bound from the host (device nodes cannot be made in a user namespace)",
    parent: [],
    child: DEVICES.flatMap((device) => [
      ...mknodInRoot(fd, `/dev/${device}`, { value: S_IFREG | 0o666, show: "S_IFREG|0666" }, 0n),
      ...bindInRoot(fd, `/dev/${device}`, `/dev/${device}`, { recursive: false }),
    ]),
  };
}
