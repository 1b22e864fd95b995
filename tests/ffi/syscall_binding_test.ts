/**
 * The table entries made of syscall() (ffi/libc.ts, THROUGH_SYSCALL) behave as
 * libc's wrappers do: a buffer travels as the address of its own bytes (a
 * subarray's too, not its backing buffer's start), numbers and bigints both
 * pass, and a failure returns -1 with errno set.
 *
 * @module
 */
import { libc } from "../../ffi/libc.ts";
import { cString } from "../../ffi/fds.ts";
import { errnoName, lastErrno } from "../../ffi/errno.ts";
import {
  AT_FDCWD,
  ERRNO,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  O,
  O_CLOEXEC,
  PROT_READ,
  PROT_WRITE,
} from "../../ffi/constants.ts";
import { SyscallError } from "../../ffi/errno.ts";
import { makeDirAt, makeNodeAt, openInRoot, removeAt } from "../../ffi/safe_fs.ts";
import { exists } from "../../host/files.ts";
import { assertEquals, assertThrows } from "../helpers.ts";

Deno.test("syscall() entries: subarrays as their own bytes, numbers and bigints, -1 and errno on failure", () => {
  const fds = new Int32Array(2);
  assertEquals(libc().pipe2(new Uint8Array(fds.buffer), O.NONBLOCK | O_CLOEXEC), 0, "pipe2");
  const [readEnd, writeEnd] = [fds[0]!, fds[1]!];
  try {
    const source = new TextEncoder().encode("..hello..");
    assertEquals(Number(libc().write(writeEnd, source.subarray(2, 7), 5n)), 5, "write of a subarray");
    const target = new Uint8Array(16).fill(0x2e);
    assertEquals(Number(libc().read(readEnd, target.subarray(4), BigInt(12))), 5, "read into a subarray");
    assertEquals(new TextDecoder().decode(target.subarray(0, 10)), "....hello.", "the bytes land at the subarray");

    assertEquals(Number(libc().read(readEnd, target, 16n)), -1, "an empty non-blocking pipe");
    assertEquals(lastErrno(), ERRNO.EAGAIN, "errno says so");
    assertEquals(libc().openat(AT_FDCWD, cString("/nonexistent/gcr-test"), O.RDONLY | O_CLOEXEC, 0), -1);
    assertEquals(lastErrno(), ERRNO.ENOENT, "openat's errno");
    assertEquals(libc().kill(2 ** 22 + 7, 0), -1, "kill of a pid above pid_max");
    assertEquals(lastErrno(), ERRNO.ESRCH, "kill's errno");
  } finally {
    libc().close(readEnd);
    libc().close(writeEnd);
  }
  assertEquals(libc().close(readEnd), -1, "close of a closed descriptor");
  assertEquals(errnoName(lastErrno()), "EBADF", "close's errno");
});

Deno.test("syscall() entries for files: mkdirat, mknodat, openat2 in a root, unlinkat; mmap and munmap", () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-syscall-" });
  const dirFd = libc().openat(AT_FDCWD, cString(dir), O.RDONLY | O.DIRECTORY | O_CLOEXEC, 0);
  try {
    assertEquals(makeDirAt(dirFd, "made", 0o750), true, "mkdirat makes the folder");
    assertEquals(Deno.statSync(`${dir}/made`).mode! & 0o7777, 0o750 & ~currentUmask(), "with the mode asked");
    assertEquals(makeDirAt(dirFd, "made", 0o750), false, "a second mkdirat finds it (EEXIST)");
    assertEquals(makeNodeAt(dirFd, "fifo", "fifo", 0, 0), true, "mknodat makes a FIFO");
    assertEquals(Deno.lstatSync(`${dir}/fifo`).isFifo, true, "a FIFO it is");
    // glibc's mknodat refuses a device number the kernel's 32-bit dev_t cannot hold: so does gcr's.
    const refused = assertThrows(() => makeNodeAt(dirFd, "big", "char-device", 4096, 1), SyscallError, "major 4096");
    assertEquals(refused.errno, ERRNO.EINVAL, `EINVAL (${refused.message})`);
    assertEquals(exists(`${dir}/big`), false, "and makes nothing");

    // openat2 with RESOLVE_IN_ROOT: a symlink to / inside the folder resolves to the folder itself.
    Deno.symlinkSync("/", `${dir}/up`);
    Deno.writeTextFileSync(`${dir}/marker`, "inside");
    const fd = openInRoot(dirFd, "up/marker", O.RDONLY);
    try {
      const buffer = new Uint8Array(16);
      const n = Number(libc().read(fd, buffer, 16n));
      assertEquals(new TextDecoder().decode(buffer.subarray(0, n)), "inside", "openat2 stayed in the root");
    } finally {
      libc().close(fd);
    }
    assertEquals(openInRoot(dirFd, "up/nonexistent", O.RDONLY, [ERRNO.ENOENT]), -ERRNO.ENOENT, "openat2's errno");

    assertEquals(removeAt(dirFd, "made"), true, "unlinkat(AT_REMOVEDIR) after EISDIR");
    assertEquals(removeAt(dirFd, "fifo"), true, "unlinkat of the FIFO");
    assertEquals(removeAt(dirFd, "fifo"), false, "unlinkat of what is gone: ENOENT");
    assertEquals(exists(`${dir}/made`) || exists(`${dir}/fifo`), false, "both gone");

    const size = 3 * 4096;
    const mapped = Number(libc().mmap(0n, BigInt(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n));
    assertEquals(mapped > 0 && mapped % 4096 === 0, true, `mmap gives a page address (${mapped})`);
    const view = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(BigInt(mapped))!, size),
    );
    assertEquals(view.every((byte) => byte === 0), true, "fresh zero pages");
    view[size - 1] = 7;
    assertEquals(view[size - 1], 7, "and writable");
    assertEquals(libc().munmap(BigInt(mapped), BigInt(size)), 0, "munmap");
    assertEquals(Number(libc().mmap(0n, 0n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n)), -1, "a zero-length map");
    assertEquals(lastErrno(), ERRNO.EINVAL, "mmap's errno");
  } finally {
    libc().close(dirFd);
    Deno.removeSync(dir, { recursive: true });
  }
});

/** The process's umask, which mkdirat's mode passes through. */
function currentUmask(): number {
  const old = Deno.umask(0o022);
  Deno.umask(old);
  return old;
}
