/**
 * A container's root as gcr reads files in it from the host: its
 * /etc/passwd for HOME, its command before create returns. Through
 * `/proc/<pid>/root` the container's own mounts count, as they do for
 * runc's init, which looks from inside.
 *
 * @module
 */
import { O } from "../ffi/constants.ts";
import { openFd } from "../ffi/fds.ts";
import { closeFd } from "../ffi/safe_fs.ts";

/**
 * `/proc/<pid>/root` of the container's first process, or `rootfs` (its
 * root folder, without the container's mounts) where the kernel refuses
 * that link: the process is non-dumpable, and only a caller that may
 * ptrace it may follow it.
 */
export function containerRoot(pid: number, rootfs: string): string {
  const root = `/proc/${pid}/root`;
  try {
    closeFd(openFd(root, O.PATH | O.DIRECTORY));
    return root;
  } catch {
    return rootfs;
  }
}
