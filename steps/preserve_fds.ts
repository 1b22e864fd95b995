/**
 * --preserve-fds N: the caller's descriptors that reach the command.
 *
 * @module
 */
import { F_SETFD } from "../ffi/constants.ts";
import { call, num, type Step } from "./step.ts";

/**
 * --preserve-fds N: the caller's descriptors 3…3+N-1 reach the command, as
 * runc passes them (sockets for socket activation); close-on-exec is
 * cleared on each, since the caller may have set it.
 */
export function preserveFds(count: number): Step {
  return {
    name: "preserve-fds",
    why: `--preserve-fds ${count}: descriptors 3 to ${2 + count} stay open for the command`,
    parent: [],
    child: Array.from({ length: count }, (_, i) => call("fcntl", 3 + i, num(F_SETFD, "F_SETFD"), 0)),
  };
}
