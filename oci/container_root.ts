/**
 * A container's root as gcr reads files in it from the host: its
 * /etc/passwd for HOME, its command before create returns. Through
 * `/proc/<pid>/root` the container's own mounts count, as they do for
 * runc's init, which looks from inside.
 *
 * @module
 */
import { byteString } from "../ffi/byte_string.ts";
import { ERRNO, O } from "../ffi/constants.ts";
import { openFd } from "../ffi/fds.ts";
import { closeFd, openInRoot } from "../ffi/safe_fs.ts";

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

/**
 * What is at `path` in the folder open as `rootFd`, its symlinks resolved
 * inside it (RESOLVE_IN_ROOT) as the container would resolve them: `use`
 * gets its info and a path to read it by while it is open. Where there is
 * nothing to look at, the errno (ENOENT, ENOTDIR, ELOOP, EACCES) instead.
 */
export function atInRoot<T>(rootFd: number, path: string, use: (info: Deno.FileInfo, file: string) => T): T | number {
  const { ENOENT, ENOTDIR, ELOOP, EACCES } = ERRNO;
  const tolerated = [ENOENT, ENOTDIR, ELOOP, EACCES];
  const fd = openInRoot(rootFd, byteString(new TextEncoder().encode(path)), O.PATH, tolerated);
  if (fd < 0) return -fd;
  try {
    const file = `/proc/self/fd/${fd}`;
    return use(Deno.statSync(file), file);
  } finally {
    closeFd(fd);
  }
}

/**
 * The text of the regular file `path` in the folder `root`, as the
 * container would see it from there (atInRoot); "" when there is no such
 * file.
 */
export function readInRoot(root: string, path: string): string {
  const rootFd = openFd(root, O.PATH | O.DIRECTORY);
  try {
    const text = atInRoot(rootFd, path, (info, file) => info.isFile ? Deno.readTextFileSync(file) : "");
    return typeof text === "string" ? text : "";
  } finally {
    closeFd(rootFd);
  }
}
