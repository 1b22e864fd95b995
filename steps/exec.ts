import { CHAIN_FDS, type ChainLayout } from "../ffi/chain.ts";
import { AT_EMPTY_PATH, F_SETFD, O_CLOEXEC, PR_SET_PDEATHSIG } from "../ffi/constants.ts";
import { TRAMPOLINE_NAME } from "../ffi/exec_trampoline.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, num, shown, type Step } from "./step.ts";

/**
 * The OCI start gate: the FIFO `gcr start` writes its byte into, and the
 * report FIFO where the chain's last reports go once gcr create has exited
 * (gcr start reads them: end-of-file there means the command was exec'd).
 */
export interface StartGate {
  readonly fifoFd: number;
  readonly reportFd: number;
}

export interface ExecOptions {
  /** gcr gives the container its terminal's foreground (gcr run); not for OCI create, which returns. */
  readonly handTerminal?: boolean;
  /** OCI create: wait for `gcr start` just before execvp. */
  readonly awaitStart?: StartGate;
  /** The process outlives gcr (create, exec -d): die-with-parent is undone before gcr lets go. */
  readonly outliveGcr?: boolean;
  /** Where the chain keeps its descriptors (default CHAIN_FDS). */
  readonly layout?: ChainLayout;
  /** The program to run, when argv[0] is not it (a hook's `path`); default argv[0], searched in PATH. */
  readonly file?: string;
}

/**
 * Replaces the child with the command, through the exec trampoline
 * (ffi/exec_trampoline.S). Until now the process is a clone of gcr's
 * Deno: exec'd from here, a command of /proc/self/exe would run the host's
 * deno binary under the image's own ld.so (CVE-2019-5736). So the chain
 * execveat()s the sealed memfd of gcr-exec, which does execvp's PATH search
 * in the container's environment and execs the command: the process's exe
 * is never the host's binary again. The status pipe stays open across that
 * exec so gcr-exec can report a failed execvp (as a negative errno); it
 * makes the pipe close-on-exec, so the command's exec closes it and gcr
 * reads end-of-file, as before.
 *
 * With `awaitStart` (OCI create), the child first points its status
 * descriptor at the report FIFO (gcr create, which read the reports, is
 * about to exit: end-of-file on the pipe is its cue) and blocks reading the
 * start FIFO until `gcr start` writes a byte. gcr start, which opened the
 * report FIFO first, reads what follows: a failed exec's report, or
 * end-of-file once the command runs, when the FIFO's last holder (the
 * status descriptor, close-on-exec) is gone. Signals are already reset, so
 * `gcr kill` works on a created container as runc's does.
 */
export function exec(plan: Pick<ContainerPlan, "workdir" | "env" | "argv">, options: ExecOptions = {}): Step {
  const gate = options.awaitStart;
  const { status, trampoline } = options.layout ?? CHAIN_FDS;
  const file = options.file ?? plan.argv[0];
  const quoted = (items: readonly string[]) => `{${items.map((item) => JSON.stringify(item)).join(", ")}}`;
  const argv = [TRAMPOLINE_NAME, String(status), file!, ...plan.argv];
  return {
    name: "exec",
    why: gate
      ? "the command becomes the container's process once gcr start opens the gate, through gcr's sealed exec trampoline"
      : "the command becomes the container's pid 1, with the container's environment and working directory, " +
        "through gcr's sealed exec trampoline",
    parent: options.handTerminal === false ? [] : [{ op: "hand-terminal" }],
    child: [
      call("chdir", plan.workdir),
      ...(options.outliveGcr
        ? [call("prctl", num(PR_SET_PDEATHSIG, "PR_SET_PDEATHSIG"), num(0, "0 /* no longer */"), 0, 0, 0)]
        : []),
      ...(gate
        ? [
          {
            ...call(
              "dup3",
              num(gate.reportFd, `${gate.reportFd} /* report FIFO */`),
              num(status, `${status} /* status */`),
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
      call("fcntl", num(status, `${status} /* status */`), num(F_SETFD, "F_SETFD"), 0),
      {
        ...call(
          "execveat",
          num(trampoline, `${trampoline} /* ${TRAMPOLINE_NAME}, a sealed memfd */`),
          "",
          shown({ strings: argv }, quoted(argv)),
          shown({ strings: plan.env }, quoted(plan.env)),
          num(AT_EMPTY_PATH, "AT_EMPTY_PATH"),
        ),
        execs: { then: `execvp(${JSON.stringify(file)}, ${quoted(plan.argv)})` },
      },
    ],
  };
}
