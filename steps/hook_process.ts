/**
 * The process of one of config.json's hooks. gcr starts it through a chain
 * of its own, as it starts containers, rather than with Deno.Command: a
 * hook's argv[0] need not be its path (`path: /bin/sh, args: ["sh", "-c",
 * …]`), which Deno.Command cannot express, and a hook that runs in the
 * container's namespaces is joined in exactly as `gcr exec` joins a
 * process (execSteps with `hookStdio`).
 *
 * @module
 */
import { CHAIN_FDS } from "../ffi/chain.ts";
import { closeFds } from "./close_fds.ts";
import { dieWithParent } from "./die_with_parent.ts";
import { exec } from "./exec.ts";
import { resetSignals } from "./reset_signals.ts";
import type { ExecPlan } from "./pipeline.ts";
import { call, num, type Step } from "./step.ts";

/** The hook kinds, in the order of a container's life (and of config.md's table). */
export const HOOK_KINDS = [
  "prestart",
  "createRuntime",
  "createContainer",
  "startContainer",
  "poststart",
  "poststop",
] as const;

export type HookKind = typeof HOOK_KINDS[number];

/** One hook: execv's path and argv, an environment, and how long it may take. */
export interface Hook {
  /** Absolute. */
  readonly path: string;
  /** argv, argv[0] included. */
  readonly args: readonly string[];
  /** Absent: the environment of whoever runs the hook (gcr's, or the container process's), as runc. */
  readonly env?: readonly string[];
  /** Seconds; absent: no limit. */
  readonly timeout?: number;
}

/** The state the spec's `state` operation reports (runtime.md, "State"): what a hook reads on stdin. */
export interface HookState {
  readonly id: string;
  /** `created` for the create-time hooks (after step 2 of the lifecycle), `running` after start, `stopped` at delete. */
  readonly status: "created" | "running" | "stopped";
  readonly pid: number;
  readonly bundle: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/** What a hook in the container's namespaces joins: `gcr exec`'s plan without the command. */
export type ContainerJoin =
  & Pick<ExecPlan, "pid" | "namespaces" | "cgroupProcs" | "ids" | "security" | "pidVia">
  & { readonly env: readonly string[] };

/** Where a hook runs: in gcr's namespaces from the bundle folder, or in the container's. */
export type HookPlace =
  | { readonly in: "runtime"; readonly cwd: string }
  | { readonly in: "container"; readonly join: ContainerJoin };

/** The runtime namespace's hooks and the container's, as config.md's table has them. */
export const HOOK_NAMESPACE: Readonly<Record<HookKind, "runtime" | "container">> = {
  prestart: "runtime",
  createRuntime: "runtime",
  createContainer: "container",
  startContainer: "container",
  poststart: "runtime",
  poststop: "runtime",
};

/** Where the hook's stdin (the container's state) and its output arrive, before hook-stdio puts them at 0, 1 and 2. */
export const HOOK_FDS = { stdin: CHAIN_FDS.firstFree, output: CHAIN_FDS.firstFree + 1 } as const;

/** stdin from the state gcr wrote, stdout and stderr into the file gcr reads if the hook fails. */
export function hookStdio(): Step {
  const { stdin, output } = HOOK_FDS;
  return {
    name: "hook-stdio",
    why: "the hook reads the container's state on stdin; what it prints is kept for the error should it fail",
    parent: [],
    child: [
      call("dup3", num(stdin, `${stdin} /* state */`), 0, 0),
      call("dup3", num(output, `${output} /* output */`), 1, 0),
      call("dup3", num(output, `${output} /* output */`), 2, 0),
    ],
  };
}

/** A hook that runs in the runtime's namespaces (prestart, createRuntime, poststart, poststop). */
export interface RuntimeHook {
  readonly path: string;
  readonly args: readonly string[];
  readonly env: readonly string[];
  /** runc's: the bundle, where engines run the runtime. */
  readonly cwd: string;
}

/** The steps of a hook in gcr's own namespaces: a plain child of gcr's, with the hook's argv and environment. */
export function runtimeHookSteps(hook: RuntimeHook): Step[] {
  return [
    {
      name: "clone",
      why: "the hook's process, in gcr's own namespaces (the runtime namespace of the spec)",
      parent: [{ op: "clone", flags: 0, show: "SIGCHLD", nonDumpable: true }],
      child: [],
    },
    dieWithParent(),
    hookStdio(),
    closeFds(HOOK_FDS.output + 1),
    resetSignals(),
    exec({ workdir: hook.cwd, env: hook.env, argv: hook.args }, { handTerminal: false, file: hook.path }),
  ];
}
