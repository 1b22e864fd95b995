import { LAYOUT, RLIMIT } from "../ffi/constants.ts";
import { call, num, shown, type Step } from "./step.ts";

/** Docker's default for the container's open files: 1024, soft and hard. */
export const OPEN_FILES = 1024;

/**
 * Sets RLIMIT_NOFILE to 1024 as Docker does. Lowering a limit needs no
 * privilege (raising needs CAP_SYS_RESOURCE, which this host lacks), so it
 * can run at any point; it runs before drop-capabilities with the other
 * settings of the process.
 */
export function limitOpenFiles(): Step {
  const limit = new Uint8Array(LAYOUT.rlimit.size);
  const view = new DataView(limit.buffer);
  view.setBigUint64(LAYOUT.rlimit.rlim_cur, BigInt(OPEN_FILES), true);
  view.setBigUint64(LAYOUT.rlimit.rlim_max, BigInt(OPEN_FILES), true);
  return {
    name: "limit-open-files",
    why: "at most 1024 open files, as in Docker (a lower limit needs no privilege)",
    parent: [],
    child: [
      call(
        "setrlimit",
        num(RLIMIT.NOFILE, "RLIMIT_NOFILE"),
        shown({ bytes: limit }, `{rlim_cur=${OPEN_FILES}, rlim_max=${OPEN_FILES}}`),
      ),
    ],
  };
}
