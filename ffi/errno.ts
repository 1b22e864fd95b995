/**
 * The one syscall error type: which call, on what, and the errno by name.
 *
 * @module
 */
import { libc, readCString } from "./libc.ts";

/** errno's symbolic name, e.g. `EPERM` (glibc's own table, strerrorname_np). */
export function errnoName(errno: number): string {
  return readCString(libc().strerrorname_np(errno)) || `errno ${errno}`;
}

/** errno's description, e.g. `Operation not permitted`. */
export function errnoDescription(errno: number): string {
  return readCString(libc().strerrordesc_np(errno)) || "Unknown error";
}

/** errno's cell: its address is fixed for the thread (a worker has its own instance of this module). */
let errnoCell: Deno.UnsafePointerView | undefined;

/**
 * The calling thread's errno. Read it in the same synchronous turn as the
 * call that failed: an await in between lets other code change it. The cell
 * is looked up once, so reading it binds nothing and allocates nothing
 * between the failed call and the read.
 */
export function lastErrno(): number {
  if (!errnoCell) {
    const location = libc().__errno_location();
    if (!location) return 0;
    errnoCell = new Deno.UnsafePointerView(location);
  }
  return errnoCell.getInt32(0);
}

/**
 * A failed libc call, printed as `mount("proc", "/r/proc"): EPERM (Operation
 * not permitted)`. `call` is the call as shown to the user (name and the
 * arguments that identify it).
 */
export class SyscallError extends Error {
  readonly call: string;
  readonly errno: number;
  readonly code: string;

  constructor(call: string, errno: number, hint?: string) {
    const code = errnoName(errno);
    super(`${call}: ${code} (${errnoDescription(errno)})${hint ? `: ${hint}` : ""}`);
    this.name = "SyscallError";
    this.call = call;
    this.errno = errno;
    this.code = code;
  }
}

/** Returns `result` unless it is -1, in which case errno becomes a SyscallError. */
export function check<T extends number | bigint>(result: T, call: string): T {
  if (Number(result) === -1) throw new SyscallError(call, lastErrno());
  return result;
}
