import { PR_SET_PDEATHSIG, SIGNALS } from "../ffi/constants.ts";
import { call, num, type Step } from "./step.ts";

/**
 * If gcr dies (even by SIGKILL), the kernel kills the container with it.
 * First, and never behind a gate: until it is set, a child waiting at its
 * gate when gcr dies would wait forever (it holds the gate's write end
 * itself until close-fds). gcr create and exec -d clear it again just
 * before they hand the process over (see exec's `outliveGcr`).
 */
export function dieWithParent(): Step {
  return {
    name: "die-with-parent",
    why: "if gcr dies, even by SIGKILL, the kernel kills the container too (it survives exec)",
    parent: [],
    child: [call("prctl", num(PR_SET_PDEATHSIG, "PR_SET_PDEATHSIG"), num(SIGNALS.SIGKILL, "SIGKILL"), 0, 0, 0)],
    runsAhead: true,
  };
}
