/**
 * `gcr exec`: a new process in a running container. It joins the
 * container's namespaces (user first, mount last; the PID namespace through
 * gcr, for its child) and its cgroup, then takes on the same hardening as
 * the container's first process (capabilities, user, no_new_privs, seccomp)
 * through the same libc chain and the same runner as `gcr run`.
 *
 * @module
 */
import { type RunMode, runSteps } from "../runner/runner.ts";
import { resolveUser } from "../security/user.ts";
import { findContainer } from "../state/containers.ts";
import { currentStatus } from "../state/processes.ts";
import { recordedSeccomp } from "../state/records.ts";
import { pidNamespaceVia } from "../steps/join_namespaces.ts";
import { type ExecPlan, execSteps } from "../steps/pipeline.ts";
import { UsageError } from "./usage.ts";
import { scanOptions } from "./flags.ts";
import { envOption, mergeEnv, workdirOption } from "../plan/container_options.ts";

export interface ExecArgs {
  container: string;
  command: string[];
  env: string[];
  workdir?: string;
  user?: string;
  detach: boolean;
  mode: RunMode;
}

/** Parses `gcr exec [options] <container> <command> [args…]`; options end at the container. */
export function parseExecArgs(args: readonly string[]): ExecArgs {
  const parsed: Omit<ExecArgs, "container" | "command"> = { env: [], detach: false, mode: "run" };
  const i = scanOptions(args, "gcr exec: ", (name, typed, value) => {
    switch (name) {
      case "e":
      case "env": {
        const entry = envOption(value());
        if (entry !== undefined) parsed.env.push(entry);
        break;
      }
      case "w":
      case "workdir":
        parsed.workdir = workdirOption(value());
        break;
      case "u":
      case "user":
        parsed.user = value();
        break;
      case "d":
      case "detach":
        parsed.detach = true;
        break;
      // As with gcr run: the process shares gcr's terminal.
      case "i":
      case "interactive":
      case "t":
      case "tty":
        break;
      case "trace":
        parsed.mode = "trace";
        break;
      default:
        throw new UsageError(`gcr exec: unknown option ${typed}`);
    }
  });
  const container = args[i];
  if (container === undefined) throw new UsageError("gcr exec: missing <container>");
  const command = args.slice(i + 1);
  if (command.length === 0) throw new UsageError("gcr exec: missing <command>");
  return { ...parsed, container, command };
}

export async function execCommand(argv: readonly string[]): Promise<number> {
  const args = parseExecArgs(argv);
  const found = findContainer(args.container);
  const record = found.record;
  if (!record || currentStatus(record) !== "running" || record.initPid === undefined) {
    throw new Error(`container ${found.id} is not running`);
  }
  const context = record.exec;
  if (!context) throw new Error(`container ${found.id} was started by a gcr that did not record how to enter it`);
  const pidVia = pidNamespaceVia(context.namespaces, Deno.uid());
  const pid = record.initPid;
  // The container's own /etc/passwd, through its root as the kernel shows it to the host.
  const user = args.user !== undefined ? resolveUser(args.user, `/proc/${pid}/root`) : context.user;
  const home = args.user !== undefined && user ? [`HOME=${user.home}`] : [];
  const plan: ExecPlan = {
    pid,
    namespaces: context.namespaces,
    cgroupProcs: context.cgroupProcs,
    argv: args.command,
    env: mergeEnv(context.env, [...home, ...args.env]),
    workdir: args.workdir ?? context.workdir,
    ids: context.ids,
    security: {
      capabilities: new Set(context.capabilities),
      noNewPrivs: context.noNewPrivs,
      maskPaths: false,
      ...(user ? { user } : {}),
      ...(context.seccomp ? { seccomp: recordedSeccomp(context)! } : {}),
    },
    dieWithParent: !args.detach,
    nullStdio: args.detach,
    pidVia,
  };
  const status = await runSteps(execSteps(plan), args.mode, { detach: args.detach });
  if ("running" in status) return 0;
  return "exited" in status ? status.exited : 128 + status.signaled;
}
