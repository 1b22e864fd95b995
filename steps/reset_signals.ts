import { LAYOUT, SIG_DFL, SIG_SETMASK, SIGNALS } from "../ffi/constants.ts";
import { call, NULL, num, shown, type Step } from "./step.ts";

/**
 * gcr cloned the child with every signal blocked, and Deno ignores SIGPIPE;
 * exec keeps both. Undo them so the command starts as from a shell (`yes |
 * head` must end), last before exec so no inherited handler runs meanwhile.
 */
export function resetSignals(): Step {
  return {
    name: "reset-signals",
    why: "the command must start with no blocked signals and SIGPIPE at its default, not as Deno left them",
    parent: [],
    child: [
      call("signal", num(SIGNALS.SIGPIPE, "SIGPIPE"), num(SIG_DFL, "SIG_DFL")),
      call(
        "sigprocmask",
        num(SIG_SETMASK, "SIG_SETMASK"),
        shown({ bytes: new Uint8Array(LAYOUT.sigset.size) }, "{}"),
        NULL,
      ),
    ],
  };
}
