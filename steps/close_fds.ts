import { CHAIN_FDS } from "../ffi/chain.ts";
import { call, num, type Step } from "./step.ts";

/**
 * Closes every descriptor the child inherited from gcr except stdio and the
 * chain's own pipes (3 and 4, close-on-exec, so they go at exec). Done early
 * so later steps know the next descriptor the child opens is 5.
 */
export function closeFds(firstFree: number = CHAIN_FDS.firstFree): Step {
  return {
    name: "close-fds",
    why: "only stdin, stdout and stderr may reach the command; gcr's own descriptors must not leak in",
    parent: [],
    child: [call("close_range", firstFree, num(0xffffffff, "~0U"), 0)],
  };
}
