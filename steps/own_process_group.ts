import { call, type Step } from "./step.ts";

/**
 * The container runs in its own process group so that gcr can make it the
 * terminal's foreground group: then Ctrl-C and job-control signals go to the
 * container, not to gcr, and an interactive shell can do job control.
 */
export function ownProcessGroup(): Step {
  return {
    name: "own-process-group",
    why: "its own process group, which gcr makes the terminal's foreground group at exec",
    parent: [],
    child: [call("setpgid", 0, 0)],
  };
}
