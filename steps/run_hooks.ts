import type { ContainerJoin, Hook, HookKind, HookState } from "./hook_process.ts";
import type { Step } from "./step.ts";

/** The create-time hooks, as config.json lists them. */
export interface CreateHooks {
  readonly prestart: readonly Hook[];
  readonly createRuntime: readonly Hook[];
  readonly createContainer: readonly Hook[];
}

/**
 * config.json's create-time hooks, run by gcr while the child waits at its
 * gate: after every mount and device node is in place, before pivot_root
 * (config.md: "after the runtime environment has been created … but before
 * the pivot_root"). prestart (deprecated) first, then createRuntime, both in
 * gcr's namespaces; then createContainer, joined into the container's.
 * A failing hook fails the step, and with it the create.
 */
export function runCreateHooks(
  hooks: CreateHooks,
  state: Omit<HookState, "pid">,
  runtimeCwd: string,
  join: Omit<ContainerJoin, "pid">,
): Step {
  const kinds: HookKind[] = ["prestart", "createRuntime", "createContainer"];
  return {
    name: "run-hooks",
    why: "config.json's prestart, createRuntime and createContainer hooks, once the container's mounts are made " +
      "and before its root is pivoted into",
    parent: kinds.filter((kind) => hooks[kind as keyof CreateHooks].length).map((kind) => ({
      op: "run-hooks" as const,
      kind,
      hooks: hooks[kind as keyof CreateHooks],
      state,
      place: kind === "createContainer"
        ? { in: "container" as const, join }
        : { in: "runtime" as const, cwd: runtimeCwd },
    })),
    child: [],
  };
}
