/**
 * File operations confined to one directory tree by the kernel.
 *
 * Every path an archive names is resolved by `openat2(rootfd, path,
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: the kernel treats the root as
 * `/` for that lookup, so `..`, absolute symlinks and chains of them all stay
 * inside it, without a check-then-use race. Only the PARENT directory of an
 * entry is resolved that way; the entry itself is then created, replaced or
 * changed relative to that directory fd, by a single name that is never
 * followed: `O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `linkat(…, 0)`, `unlinkat`.
 *
 * Names are byte strings (see image/tar.ts): one char per byte. Relative
 * paths given here are already normalised by the caller (no `.`/`..`/empty
 * components, no leading slash); {@link assertComponent} guards single names.
 *
 * @module
 */
import { check, lastErrno, SyscallError } from "./errno.ts";
import { libc } from "./libc.ts";
import {
  AT_EMPTY_PATH,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  DT_DIR,
  DT_UNKNOWN,
  ERRNO,
  FS_LAYOUT,
  O,
  O_CLOEXEC,
  RESOLVE,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
} from "./constants.ts";
import { type ByteString, byteString, displayName } from "./byte_string.ts";
import { openFd, pollReadable } from "./fds.ts";

const { EEXIST, ENOENT, EISDIR, EINTR, EAGAIN, EACCES, ENOSYS } = ERRNO;

/** A NUL-terminated copy of a byte string, for a `const char *` argument. */
export function cBytes(name: ByteString): Uint8Array {
  const bytes = new Uint8Array(name.length + 1);
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code === 0 || code > 0xff) throw new Error(`invalid byte in name ${displayName(name)}`);
    bytes[i] = code;
  }
  return bytes;
}

/** Refuses a name that is not one plain path component. */
export function assertComponent(name: ByteString): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new Error(`${displayName(name)} is not a single path component`);
  }
}

/** Closes an fd we own; errors are ignored (nothing to do about them). */
export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

const openHow = new Uint8Array(FS_LAYOUT.open_how.size);
const openHowView = new DataView(openHow.buffer);

/**
 * `openat2(rootFd, path, {flags, mode, resolve: IN_ROOT|NO_MAGICLINKS})`:
 * `path` is looked up as if `rootFd` were `/`. Returns the fd, or -errno
 * for the errnos in `tolerate` (so callers can branch on ENOENT without an
 * exception); others throw.
 */
export function openInRoot(
  rootFd: number,
  path: ByteString,
  flags: number,
  tolerate: readonly number[] = [],
): number {
  openHowView.setBigUint64(FS_LAYOUT.open_how.flags, BigInt(flags | O_CLOEXEC), true);
  openHowView.setBigUint64(FS_LAYOUT.open_how.mode, 0n, true);
  openHowView.setBigUint64(
    FS_LAYOUT.open_how.resolve,
    BigInt(RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS),
    true,
  );
  const cPath = cBytes(path === "" ? "." : path);
  for (let attempt = 0;; attempt++) {
    const fd = Number(
      libc().openat2(rootFd, cPath, openHow, BigInt(openHow.length)),
    );
    if (fd >= 0) return fd;
    const errno = lastErrno();
    // EAGAIN: a rename elsewhere on the system raced the lookup; the kernel
    // asks for a retry instead of risking an escape.
    if ((errno === EAGAIN || errno === EINTR) && attempt < 32) continue;
    if (errno === ENOSYS) {
      throw new SyscallError(
        `openat2(${displayName(path)})`,
        errno,
        "the kernel has no openat2 (Linux 5.6+ needed): refusing to extract without kernel-enforced containment",
      );
    }
    if (tolerate.includes(errno)) return -errno;
    throw new SyscallError(`openat2(${displayName(path)}, RESOLVE_IN_ROOT)`, errno);
  }
}

/** A directory fd for `path` inside the root (symlinks resolved within the root), or -errno if tolerated. */
export function openDirInRoot(rootFd: number, path: ByteString, tolerate: readonly number[] = []): number {
  return openInRoot(rootFd, path, O.PATH | O.DIRECTORY, tolerate);
}

/**
 * The directory `path` inside the root, created (0755, like tar's implied
 * parents) with any missing ancestors. Each `mkdirat` is relative to an
 * ancestor fd that openat2 resolved, so a dangling symlink on the way ends in
 * an error, not in a directory created wherever it points.
 */
export function ensureDirInRoot(rootFd: number, path: ByteString): number {
  const fd = openDirInRoot(rootFd, path, [ENOENT]);
  if (fd >= 0) return fd;
  const slash = path.lastIndexOf("/");
  const parentPath = slash === -1 ? "" : path.slice(0, slash);
  const name = path.slice(slash + 1);
  const parent = ensureDirInRoot(rootFd, parentPath);
  try {
    const made = libc().mkdirat(parent, cBytes(name), 0o755);
    if (made === -1 && lastErrno() !== EEXIST) throw new SyscallError(`mkdirat(${displayName(path)})`, lastErrno());
  } finally {
    closeFd(parent);
  }
  const again = openDirInRoot(rootFd, path, [ENOENT]);
  if (again < 0) {
    throw new Error(`cannot create directory ${displayName(path)}: it is a symbolic link that leads nowhere`);
  }
  return again;
}

/** `openat(dirFd, name, flags|O_NOFOLLOW|O_CLOEXEC, mode)`, or -errno if tolerated. */
export function openAt(
  dirFd: number,
  name: ByteString,
  flags: number,
  mode: number,
  tolerate: readonly number[] = [],
): number {
  const fd = libc().openat(dirFd, cBytes(name), flags | O.NOFOLLOW | O_CLOEXEC, mode);
  if (fd >= 0) return fd;
  const errno = lastErrno();
  if (tolerate.includes(errno)) return -errno;
  throw new SyscallError(`openat(${displayName(name)})`, errno);
}

/** Writes all of `data` to `fd` (handles short writes). */
export function writeAll(fd: number, data: Uint8Array, what: ByteString): void {
  let done = 0;
  while (done < data.length) {
    const n = Number(libc().write(fd, done ? data.subarray(done) : data, BigInt(data.length - done)));
    if (n < 0) {
      if (lastErrno() === EINTR) continue;
      throw new SyscallError(`write(${displayName(what)})`, lastErrno());
    }
    done += n;
  }
}

/** Creates a directory `name` in `dirFd`; false if something already exists there. */
export function makeDirAt(dirFd: number, name: ByteString, mode: number): boolean {
  if (libc().mkdirat(dirFd, cBytes(name), mode) === 0) return true;
  if (lastErrno() === EEXIST) return false;
  throw new SyscallError(`mkdirat(${displayName(name)})`, lastErrno());
}

/** `symlinkat(target, dirFd, name)`; false if `name` exists. The target is stored, never followed. */
export function symlinkAt(target: ByteString, dirFd: number, name: ByteString): boolean {
  if (libc().symlinkat(cBytes(target), dirFd, cBytes(name)) === 0) return true;
  if (lastErrno() === EEXIST) return false;
  throw new SyscallError(`symlinkat(${displayName(target)}, ${displayName(name)})`, lastErrno());
}

/** `linkat(fromDir, fromName, toDir, toName, 0)`: never AT_SYMLINK_FOLLOW. False if `toName` exists. */
export function hardLinkAt(fromDir: number, fromName: ByteString, toDir: number, toName: ByteString): boolean {
  if (libc().linkat(fromDir, cBytes(fromName), toDir, cBytes(toName), 0) === 0) return true;
  if (lastErrno() === EEXIST) return false;
  throw new SyscallError(`linkat(${displayName(fromName)}, ${displayName(toName)})`, lastErrno());
}

export type NodeKind = "fifo" | "char-device" | "block-device";

/** `makedev(3)` as glibc encodes it. */
export function makeDev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** `mknodat` for a FIFO or device node (mode 0600 until the caller applies the real one); false if `name` exists. */
export function makeNodeAt(dirFd: number, name: ByteString, kind: NodeKind, major: number, minor: number): boolean {
  const type = kind === "fifo" ? S_IFIFO : kind === "char-device" ? S_IFCHR : S_IFBLK;
  const dev = kind === "fifo" ? 0n : makeDev(major, minor);
  // The kernel takes a 32-bit device number; glibc refuses a larger one rather than cut it.
  if (dev > 0xffffffffn) throw new SyscallError(`mknodat(${displayName(name)}, ${major}:${minor})`, ERRNO.EINVAL);
  if (libc().mknodat(dirFd, cBytes(name), type | 0o600, dev) === 0) return true;
  if (lastErrno() === EEXIST) return false;
  throw new SyscallError(`mknodat(${displayName(name)})`, lastErrno());
}

/** Ownership of `name` in `dirFd` itself, never of a symlink's target. */
export function chownAt(dirFd: number, name: ByteString, uid: number, gid: number): void {
  check(
    libc().fchownat(dirFd, cBytes(name), uid, gid, name === "" ? AT_EMPTY_PATH : AT_SYMLINK_NOFOLLOW),
    `fchownat(${displayName(name || ".")}, ${uid}, ${gid})`,
  );
}

/**
 * Mode of `name` in `dirFd`. glibc's fchmodat with AT_SYMLINK_NOFOLLOW opens
 * the name O_PATH|O_NOFOLLOW and refuses a symlink (EOPNOTSUPP), so a symlink's
 * target is never chmodded. Never call it for symlinks: Linux has no mode for them.
 */
export function chmodAt(dirFd: number, name: ByteString, mode: number): void {
  check(
    libc().fchmodat(dirFd, cBytes(name), mode, AT_SYMLINK_NOFOLLOW),
    `fchmodat(${displayName(name)}, 0${mode.toString(8)})`,
  );
}

/** struct timespec[2] for atime and mtime, both set to `time`. */
export function timespecs(time: { sec: number; nsec: number }): Uint8Array {
  const bytes = new Uint8Array(FS_LAYOUT.timespec.size * 2);
  const view = new DataView(bytes.buffer);
  for (const base of [0, FS_LAYOUT.timespec.size]) {
    view.setBigInt64(base + FS_LAYOUT.timespec.tv_sec, BigInt(time.sec), true);
    view.setBigInt64(base + FS_LAYOUT.timespec.tv_nsec, BigInt(time.nsec), true);
  }
  return bytes;
}

/** Times of `name` in `dirFd` (a symlink's own times: AT_SYMLINK_NOFOLLOW). */
export function setTimesAt(dirFd: number, name: ByteString, time: { sec: number; nsec: number }): void {
  check(
    libc().utimensat(dirFd, cBytes(name), timespecs(time), AT_SYMLINK_NOFOLLOW),
    `utimensat(${displayName(name)})`,
  );
}

/**
 * Sets one xattr on `name` in `dirFd` without following it. Uses
 * `lsetxattr("/proc/self/fd/<dirFd>/<name>")`: the magic link is our own
 * directory fd (already resolved inside the root) and the last component is
 * not followed. Returns the errno instead of throwing, so callers can decide
 * which failures are notices.
 */
export function setXattrAt(dirFd: number, name: ByteString, key: ByteString, value: Uint8Array): number {
  const path = cBytes(`/proc/self/fd/${dirFd}/${name}`);
  return libc().lsetxattr(path, cBytes(key), value, BigInt(value.length), 0) === 0 ? 0 : lastErrno();
}

/** `fsetxattr` on an open fd; returns the errno (0 on success). */
export function setXattrFd(fd: number, key: ByteString, value: Uint8Array): number {
  return libc().fsetxattr(fd, cBytes(key), value, BigInt(value.length), 0) === 0 ? 0 : lastErrno();
}

const direntBuffer = new Uint8Array(64 * 1024);

/** Names in the directory open at `fd` (not `.`/`..`), with whether each is known to be a directory. */
export function listDir(fd: number, what: ByteString): { name: ByteString; dir: boolean | undefined }[] {
  const entries: { name: ByteString; dir: boolean | undefined }[] = [];
  const view = new DataView(direntBuffer.buffer);
  for (;;) {
    const n = Number(libc().getdents64(fd, direntBuffer, BigInt(direntBuffer.length)));
    if (n < 0) throw new SyscallError(`getdents64(${displayName(what)})`, lastErrno());
    if (n === 0) return entries;
    for (let pos = 0; pos < n;) {
      const reclen = view.getUint16(pos + FS_LAYOUT.dirent64.d_reclen, true);
      const type = direntBuffer[pos + FS_LAYOUT.dirent64.d_type]!;
      const start = pos + FS_LAYOUT.dirent64.d_name;
      const end = direntBuffer.indexOf(0, start);
      const name = byteString(direntBuffer.subarray(start, end));
      if (name !== "." && name !== "..") {
        entries.push({ name, dir: type === DT_UNKNOWN ? undefined : type === DT_DIR });
      }
      pos += reclen;
    }
  }
}

/**
 * Removes `name` from `dirFd`, a whole tree if it is a directory, without
 * ever following a symlink: children are listed through an fd opened
 * `O_DIRECTORY|O_NOFOLLOW` and unlinked relative to it. A directory we may not
 * list or empty (rootless, mode 0500) gets u+rwx first. False if nothing was there.
 */
export function removeAt(dirFd: number, name: ByteString): boolean {
  assertComponent(name);
  const cName = cBytes(name);
  if (libc().unlinkat(dirFd, cName, 0) === 0) return true;
  let errno = lastErrno();
  if (errno === ENOENT) return false;
  if (errno !== EISDIR) throw new SyscallError(`unlinkat(${displayName(name)})`, errno);
  let fd = openAt(dirFd, name, O.RDONLY | O.DIRECTORY, 0, [EACCES]);
  if (fd === -EACCES) {
    chmodAt(dirFd, name, 0o700);
    fd = openAt(dirFd, name, O.RDONLY | O.DIRECTORY, 0);
  }
  try {
    emptyDir(fd, name);
  } finally {
    closeFd(fd);
  }
  if (libc().unlinkat(dirFd, cName, AT_REMOVEDIR) === 0) return true;
  errno = lastErrno();
  throw new SyscallError(`unlinkat(${displayName(name)}, AT_REMOVEDIR)`, errno);
}

/** Removes everything inside the directory open at `fd`. */
export function emptyDir(fd: number, what: ByteString): void {
  let madeWritable = false;
  for (const entry of listDir(fd, what)) {
    try {
      removeAt(fd, entry.name);
    } catch (error) {
      // Unlinking needs write permission on the directory (rootless, 0555).
      if (madeWritable || !(error instanceof SyscallError) || error.errno !== EACCES) throw error;
      check(libc().fchmod(fd, 0o700), `fchmod(${displayName(what)}, 0700)`);
      madeWritable = true;
      removeAt(fd, entry.name);
    }
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
 * The most {@link readInRoot} reads: an image's /etc/passwd and /etc/group
 * are a few KB; a bigger file is not one gcr should hold in memory for a
 * HOME lookup.
 */
export const READ_IN_ROOT_LIMIT = 1 << 20;

/**
 * The text of the regular file `path` in the folder `root`, as the
 * container would see it from there (atInRoot); "" when there is no such
 * file, or it is empty by its size or larger than READ_IN_ROOT_LIMIT.
 *
 * A running container's root is reached through /proc/<pid>/root, so its
 * /proc and /sys are there too, and its /etc/passwd may be a link into
 * them: /proc/kmsg is a regular file of size 0 whose read blocks until the
 * kernel logs, which would hold gcr (root on the host) at create or exec
 * for as long as the container likes. Pseudo-files state size 0 (procfs)
 * or a page (sysfs); so only st_size bytes are read, with O_NONBLOCK, and
 * a read that would wait gives "".
 */
export function readInRoot(root: string, path: string): string {
  const rootFd = openFd(root, O.PATH | O.DIRECTORY);
  try {
    const text = atInRoot(rootFd, path, (info, file) => {
      return info.isFile && info.size > 0 && info.size <= READ_IN_ROOT_LIMIT ? readUpTo(file, info.size) : "";
    });
    return typeof text === "string" ? text : "";
  } finally {
    closeFd(rootFd);
  }
}

/** At most `size` bytes of `file` as text, without waiting: "" where a read would wait (poll says so). */
function readUpTo(file: string, size: number): string {
  const fd = openFd(file, O.RDONLY | O.NONBLOCK);
  try {
    const bytes = new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const ready = pollReadable(fd, 0);
      if (ready === 0) return "";
      const n = ready < 0 ? -1 : Number(libc().read(fd, bytes.subarray(got), BigInt(size - got)));
      if (n === 0) break;
      if (n > 0) {
        got += n;
        continue;
      }
      const errno = lastErrno();
      if (errno !== EINTR) throw new SyscallError(`read(${file})`, errno);
    }
    return new TextDecoder().decode(bytes.subarray(0, got));
  } finally {
    closeFd(fd);
  }
}
