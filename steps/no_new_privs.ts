import { PR } from "../ffi/constants.ts";
import { call, num, type Step } from "./step.ts";

/**
 * Sets no_new_privs: from here on no exec can raise privileges, so a
 * set-uid binary or file capabilities in the image give nothing. The kernel
 * also requires it (or CAP_SYS_ADMIN, which the container no longer has)
 * before an unprivileged process may install a seccomp filter.
 */
export function noNewPrivs(): Step {
  return {
    name: "no-new-privs",
    why: "set-uid binaries and file capabilities can no longer raise privileges; required before install-seccomp",
    parent: [],
    child: [call("prctl", num(PR.SET_NO_NEW_PRIVS, "PR_SET_NO_NEW_PRIVS"), 1, 0, 0, 0)],
  };
}
