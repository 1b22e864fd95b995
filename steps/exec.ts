import { O_CLOEXEC, PR_SET_PDEATHSIG } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, num, shown, type Step } from "./step.ts";

/** The OCI start gate: the FIFO `gcr start` writes to, and /dev/null for the reports nobody reads after create. */
export interface StartGate {
  readonly fifoFd: number;
  readonly nullFd: number;
  /** The chain's status descriptor (CHAIN_FDS.status unless preserved fds moved it). */
  readonly statusFd: number;
}

export interface ExecOptions {
  /** gcr gives the container its terminal's foreground (gcr run); not for OCI create, which returns. */
  readonly handTerminal?: boolean;
  /** OCI create: wait for `gcr start` just before execvp. */
  readonly awaitStart?: StartGate;
  /** The process outlives gcr (create, exec -d): die-with-parent is undone before gcr lets go. */
  readonly outliveGcr?: boolean;
}

/**
 * Replaces the child with the command. environ is pointed at the container's
 * environment first (a memcpy of one pointer: setenv could malloc), so
 * execvp searches the container's PATH, inside the new root.
 *
 * With `awaitStart` (OCI create), the child then points its status
 * descriptor at /dev/null (gcr create, which read the reports, is about to
 * exit: end-of-file there is its cue) and blocks reading the start FIFO
 * until `gcr start` writes a byte. Signals are already reset, so `gcr kill`
 * works on a created container as runc's does. Should execvp fail after
 * start, the chain's gate reads end-of-file (gcr create is gone) and it
 * ends in _exit(127).
 */
export function exec(plan: Pick<ContainerPlan, "workdir" | "env" | "argv">, options: ExecOptions = {}): Step {
  const gate = options.awaitStart;
  return {
    name: "exec",
    why: gate
      ? "the command becomes the container's process once gcr start opens the gate"
      : "the command becomes the container's pid 1, with the container's environment and working directory",
    parent: options.handTerminal === false ? [] : [{ op: "hand-terminal" }],
    child: [
      call("chdir", plan.workdir),
      call(
        "memcpy",
        shown({ libcVariable: "environ" }, "&environ"),
        shown({ pointerTo: { strings: plan.env } }, `&{${plan.env.map((e) => JSON.stringify(e)).join(", ")}}`),
        8,
      ),
      ...(options.outliveGcr
        ? [call("prctl", num(PR_SET_PDEATHSIG, "PR_SET_PDEATHSIG"), num(0, "0 /* no longer */"), 0, 0, 0)]
        : []),
      ...(gate
        ? [
          {
            ...call(
              "dup3",
              num(gate.nullFd, `${gate.nullFd} /* /dev/null */`),
              num(gate.statusFd, `${gate.statusFd} /* status */`),
              num(O_CLOEXEC, "O_CLOEXEC"),
            ),
            endsReports: true,
          },
          call(
            "read",
            num(gate.fifoFd, `${gate.fifoFd} /* start FIFO */`),
            shown({ bytes: new Uint8Array(1) }, "&byte"),
            1,
          ),
        ]
        : []),
      call(
        "execvp",
        plan.argv[0]!,
        shown({ strings: plan.argv }, `{${plan.argv.map((a) => JSON.stringify(a)).join(", ")}}`),
      ),
    ],
  };
}
