/**
 * A container's trace file in the `--trace-dir` folder, opened for
 * appending: verbs of one container run side by side (exec while kill), and
 * O_APPEND lands each line whole.
 *
 * gcr runs as root and the folder may be one others can write to, so the
 * name is never trusted: a new file is made with O_EXCL (which never follows
 * a link); an existing name is opened with O_NOFOLLOW (a symlink fails) and
 * O_NONBLOCK (a FIFO planted there cannot hold gcr at open: with no reader
 * the open fails, with one it succeeds and is then refused), and nothing is
 * written unless what was opened is a regular file.
 *
 * @module
 */
import { ERRNO, O } from "../ffi/constants.ts";
import { SyscallError } from "../ffi/errno.ts";
import { openFd } from "../ffi/fds.ts";
import { closeFd, writeAll } from "../ffi/safe_fs.ts";
import type { TraceFile } from "../output/trace.ts";

export function openTraceFile(path: string): TraceFile {
  const fd = openOwn(path);
  if (!Deno.statSync(`/proc/self/fd/${fd}`).isFile) {
    closeFd(fd);
    throw refused(path);
  }
  return {
    write: (bytes) => writeAll(fd, bytes, path),
    close: () => closeFd(fd),
  };
}

function openOwn(path: string): number {
  const flags = O.WRONLY | O.APPEND | O.NOFOLLOW | O.NONBLOCK;
  try {
    return openFd(path, flags | O.CREAT | O.EXCL, 0o600);
  } catch (error) {
    if (!(error instanceof SyscallError) || error.errno !== ERRNO.EEXIST) throw error;
  }
  try {
    return openFd(path, flags);
  } catch (error) {
    if (error instanceof SyscallError) throw refused(path);
    throw error;
  }
}

function refused(path: string): Error {
  return new Error(`--trace-dir: ${path} is not a regular file of its own (a symlink?): not tracing into it`);
}
