import type { ContainerPlan } from "./plan.ts";
import { call, shown, type Step } from "./step.ts";

/**
 * Replaces the child with the command. environ is pointed at the container's
 * environment first (a memcpy of one pointer: setenv could malloc), so
 * execvp searches the container's PATH, inside the new root.
 */
export function exec(plan: Pick<ContainerPlan, "workdir" | "env" | "argv">): Step {
  return {
    name: "exec",
    why: "the command becomes the container's pid 1, with the container's environment and working directory",
    parent: [{ op: "hand-terminal" }],
    child: [
      call("chdir", plan.workdir),
      call(
        "memcpy",
        shown({ libcVariable: "environ" }, "&environ"),
        shown({ pointerTo: { strings: plan.env } }, `&{${plan.env.map((e) => JSON.stringify(e)).join(", ")}}`),
        8,
      ),
      call(
        "execvp",
        plan.argv[0]!,
        shown({ strings: plan.argv }, `{${plan.argv.map((a) => JSON.stringify(a)).join(", ")}}`),
      ),
    ],
  };
}
