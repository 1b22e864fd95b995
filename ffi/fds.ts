/**
 * File descriptors as gcr (the parent) handles them through libc: C
 * strings, opening by path, and moving a descriptor above the numbers a
 * child's chain writes to.
 *
 * @module
 */
import { AT_FDCWD, F_DUPFD_CLOEXEC, LAYOUT, O_CLOEXEC, POLLIN } from "./constants.ts";
import { check, lastErrno, SyscallError } from "./errno.ts";
import { libc } from "./libc.ts";

/** `text` as a NUL-terminated C string; a NUL inside it would cut it short, so it is refused. */
export function cString(text: string): Uint8Array {
  if (text.includes("\0")) throw new Error(`a C string cannot hold a NUL byte: ${JSON.stringify(text)}`);
  return new TextEncoder().encode(text + "\0");
}

/**
 * `openat(AT_FDCWD, path, flags|O_CLOEXEC, mode)`; throws a SyscallError for
 * `open(<path>)`, with `hint` after the errno when given.
 */
export function openFd(path: string, flags: number, mode = 0, hint?: string): number {
  const fd = libc().openat(AT_FDCWD, cString(path), flags | O_CLOEXEC, mode);
  if (fd === -1) throw new SyscallError(`open(${path})`, lastErrno(), hint);
  return fd;
}

/**
 * `fd` itself when it is at `floor` or above, else a close-on-exec copy
 * there (and `fd` closed): descriptors a chain's prologue copies from must
 * sit above every number it copies to.
 */
export function moveFdAbove(fd: number, floor: number): number {
  if (fd >= floor) return fd;
  const moved = check(libc().fcntl(fd, F_DUPFD_CLOEXEC, floor), `fcntl(${fd}, F_DUPFD_CLOEXEC, ${floor})`);
  libc().close(fd);
  return moved;
}

/**
 * poll(2) for input on `fd` (POLLHUP wakes it too): >0 when a read will
 * not wait, 0 when `timeoutMs` passed first, -1 with errno set. Asked
 * before a non-blocking read, so that errno is read only after a real
 * failure, never to learn that the read would have waited.
 */
export function pollReadable(fd: number, timeoutMs: number): number {
  const { pollfd } = LAYOUT;
  const bytes = new Uint8Array(pollfd.size);
  const view = new DataView(bytes.buffer);
  view.setInt32(pollfd.fd, fd, true);
  view.setInt16(pollfd.events, POLLIN, true);
  return Number(libc().poll(bytes, 1n, timeoutMs));
}
