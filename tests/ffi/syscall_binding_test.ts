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
import { AT_FDCWD, ERRNO, O, O_CLOEXEC } from "../../ffi/constants.ts";
import { assertEquals } from "../helpers.ts";

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
