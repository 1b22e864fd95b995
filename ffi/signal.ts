/**
 * kill(2) through libc. Deno.kill's first call costs 3-4 ms (measured in a
 * fresh process: 3.15 ms, against 0.7 ms for binding libc's kill), which is
 * most of what `gcr kill` does for an engine; libc's is bound on first use
 * like every other symbol (ffi/libc.ts).
 *
 * @module
 */
import { ERRNO } from "./constants.ts";
import { lastErrno, SyscallError } from "./errno.ts";
import { libc } from "./libc.ts";

/** Sends `signal` to `pid`: true if sent, false if no such process (ESRCH); any other failure throws. */
export function sendSignal(pid: number, signal: number): boolean {
  if (libc().kill(pid, signal) === 0) return true;
  const errno = lastErrno();
  if (errno === ERRNO.ESRCH) return false;
  throw new SyscallError(`kill(${pid}, ${signal})`, errno);
}
