/**
 * A container's mounts in the host's mount namespace: a config without a
 * mount namespace of its own has its root mounted there (create records it
 * as ContainerRecord.hostMounts), and whatever removes the container
 * detaches it.
 *
 * @module
 */
import { MNT_DETACH } from "../ffi/constants.ts";
import { cString } from "../ffi/fds.ts";
import { libc } from "../ffi/libc.ts";

/** Detaches a container's mounts in the host's namespace (ContainerRecord.hostMounts). */
export function detachHostMounts(mounts: readonly string[]): void {
  // MNT_DETACH takes the mounts below each too; one already gone is no error.
  for (const mount of mounts) libc().umount2(cString(mount), MNT_DETACH);
}
