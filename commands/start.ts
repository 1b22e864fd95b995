/**
 * `gcr start`: opens a created container's start gate (one byte into its
 * start FIFO).
 *
 * @module
 */

import { AT_FDCWD, ERRNO, O, O_CLOEXEC } from "../ffi/constants.ts";
import { check, lastErrno, SyscallError } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { cString } from "../ffi/fds.ts";
import { currentStatus } from "../state/processes.ts";
import { updateRecord } from "../state/records.ts";
import { parseFlags } from "./flags.ts";
import { ociContainer, oneId } from "./oci_container.ts";

/** `gcr start ID`: opens the start gate of a created container. */
export function startCommand(args: readonly string[]): number {
  const { rest } = parseFlags(args, {}, {}, "start");
  const found = ociContainer(oneId(rest, "start"));
  const status = currentStatus(found.record);
  if (status !== "created") throw new Error(`cannot start container ${found.id}: it is ${status}, not created`);
  const fd = libc().openat(AT_FDCWD, cString(found.paths.startFifo), O.WRONLY | O.NONBLOCK | O_CLOEXEC, 0);
  if (fd === -1) {
    const errno = lastErrno();
    if (errno === ERRNO.ENXIO) throw new Error(`cannot start container ${found.id}: its process is gone`);
    throw new SyscallError(`open(${found.paths.startFifo})`, errno);
  }
  try {
    check(Number(libc().write(fd, new Uint8Array([0]), 1n)), "write(start FIFO)");
  } finally {
    libc().close(fd);
  }
  Deno.removeSync(found.paths.startFifo);
  updateRecord(found.paths, { status: "running", started: new Date().toISOString() });
  return 0;
}
