/**
 * Uid and gid 0 of a new user namespace, whatever host ids its maps give
 * the process.
 *
 * @module
 */
import { SYS } from "../ffi/constants.ts";
import { num, rawSyscall, type Step } from "./step.ts";

/**
 * In a new user namespace, the process keeps the host ids it had (gcr's, as
 * root: 0), which config.json's maps may not include (`0 100000 65536`):
 * then it is nobody inside, and the kernel refuses to let it create files
 * (EOVERFLOW). Taking uid and gid 0 of the namespace, once the maps are
 * written, makes it the container's root, as runc does. Raw, as set-user's.
 */
export function becomeRoot(): Step {
  const zeros = [num(0), num(0), num(0)];
  return {
    name: "become-root",
    why: "root of the new user namespace, whatever host ids the maps give it",
    parent: [],
    child: [rawSyscall("setresgid", SYS.setresgid, ...zeros), rawSyscall("setresuid", SYS.setresuid, ...zeros)],
  };
}
