/**
 * The runner's reader of the child's statuses (ffi/child.ts statusReader):
 * one read(2) may bring several statuses, or part of one, and each comes
 * out whole and in order; end-of-file (the exec) is null.
 *
 * @module
 */
import { statusReader } from "../../ffi/child.ts";
import { O_CLOEXEC } from "../../ffi/constants.ts";
import { libc } from "../../ffi/libc.ts";
import { assertEquals } from "../helpers.ts";

/** Writes `statuses` in one write(2): as they wait in the pipe when the child has run ahead of gcr. */
function send(fd: number, ...statuses: number[]): void {
  const bytes = new Uint8Array(new Int32Array(statuses).buffer);
  assertEquals(Number(libc().write(fd, bytes, BigInt(bytes.length))), bytes.length, "write");
}

Deno.test("statuses come out whole and in order however the pipe delivers them; end-of-file is null", () => {
  const fds = new Int32Array(2);
  assertEquals(libc().pipe2(new Uint8Array(fds.buffer), O_CLOEXEC), 0, "pipe2");
  const [readEnd, writeEnd] = [fds[0]!, fds[1]!];
  let writing = true;
  try {
    const next = statusReader(readEnd);
    // Three statuses already waiting: one read takes them all.
    send(writeEnd, 0, 0, 2);
    assertEquals([next(), next(), next()], [0, 0, 2], "three at once");
    // One status in two writes (3 bytes, then 1): a negative one, as the trampoline reports a failed exec.
    const split = new Uint8Array(new Int32Array([-13]).buffer);
    libc().write(writeEnd, split.subarray(0, 3), 3n);
    libc().write(writeEnd, split.subarray(3), 1n);
    assertEquals(next(), -13, "split across writes");
    // A status and the first bytes of the next one, then the rest.
    const both = new Uint8Array(new Int32Array([0, 95]).buffer);
    libc().write(writeEnd, both.subarray(0, 6), 6n);
    assertEquals(next(), 0, "the whole one first");
    libc().write(writeEnd, both.subarray(6), 2n);
    assertEquals(next(), 95, "then the one completed later");
    // More than the reader's buffer holds in one read.
    const many = Array.from({ length: 1500 }, (_, i) => i);
    send(writeEnd, ...many);
    assertEquals(Array.from(many, () => next()), many, "1500 in order");
    libc().close(writeEnd);
    writing = false;
    assertEquals(next(), null, "end-of-file: the child exec'd or died");
  } finally {
    libc().close(readEnd);
    if (writing) libc().close(writeEnd);
  }
});
