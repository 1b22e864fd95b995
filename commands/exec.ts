/**
 * `gcr exec`: a new process in a running container. It joins the
 * container's namespaces (user first, mount last; the PID namespace through
 * gcr, for its child) and its cgroup, then takes on the same hardening as
 * the container's first process (capabilities, user, no_new_privs, seccomp)
 * through the same libc chain and the same runner as `gcr run`. runc's form
 * (`exec --process P.json ID`, as engines call it) reads the process as
 * config.json's is read.
 *
 * @module
 */
import { asRunc } from "./runc_errors.ts";
import { type RunMode, runSteps } from "../runner/runner.ts";
import { tracingToFile } from "../output/trace.ts";
import { resolveUser, withHome } from "../security/user.ts";
import { containerRoot } from "../oci/container_root.ts";
import { readInRoot } from "../ffi/safe_fs.ts";
import { findContainer } from "../state/containers.ts";
import { currentStatus } from "../state/processes.ts";
import { type ExecContext, recordedCapabilities, recordedSeccomp, recordedSecurity } from "../state/records.ts";
import type { IdPlan } from "../steps/plan.ts";
import { pidNamespaceVia } from "../steps/join_namespaces.ts";
import { type ExecPlan, execSteps } from "../steps/pipeline.ts";
import { UsageError } from "./usage.ts";
import { countFlag, envOption, listFlag, parseFlags, scanOptions, workdirOption } from "./flags.ts";
import { CHAIN_FDS } from "../ffi/chain.ts";
import { libc } from "../ffi/libc.ts";
import { moveFdAbove } from "../ffi/fds.ts";
import { writeFileAtomically } from "../host/files.ts";
import { securityPlan } from "../oci/security_plan.ts";
import { ownNamespaceIds } from "../oci/plan.ts";
import { ociContainer, ociFolder } from "./oci_container.ts";
import { connectUnix } from "../ffi/unix_socket.ts";
import { OCI_VERSION } from "../output/version.ts";
import { parseSpec } from "../oci/spec/spec.ts";
import { mergeEnv } from "../plan/run_plan.ts";

export interface ExecArgs {
  container: string;
  command: string[];
  env: string[];
  workdir?: string;
  user?: string;
  detach: boolean;
  mode: RunMode;
}

/**
 * The ids a process entering the container may take. gcr create records
 * config.json's mappings, which are empty for a container without a user
 * namespace of its own: its ids are those of gcr's namespace (the host's).
 */
function entryIds(context: ExecContext): IdPlan {
  return context.namespaces.includes("user") ? context.ids : ownNamespaceIds();
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

async function gcrExec(argv: readonly string[]): Promise<number> {
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
    ids: entryIds(context),
    security: recordedSecurity(context, user),
    dieWithParent: !args.detach,
    nullStdio: args.detach,
    pidVia,
  };
  const status = await runSteps(execSteps(plan), args.mode, { detach: args.detach });
  if ("running" in status) return 0;
  return "exited" in status ? status.exited : 128 + status.signaled;
}

/** `gcr exec --process P.json [--detach] [--pid-file F] [--console-socket S] ID`: runc's form of exec. */
async function ociExec(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(
    args,
    {
      process: "value",
      detach: "bool",
      "pid-file": "value",
      "console-socket": "value",
      tty: "bool",
      cwd: "value",
      env: "list",
      user: "value",
      "preserve-fds": "value",
    },
    { p: "process", d: "detach", t: "tty", e: "env", u: "user" },
    "exec",
  );
  const [id, ...command] = rest;
  if (id === undefined) throw new UsageError("gcr exec: missing container id");
  const found = ociContainer(id);
  const status = currentStatus(found.record);
  if (status === "stopped") throw new Error("cannot exec in a stopped container");
  if (status === "paused") throw new Error("cannot exec in a paused container");
  // A created container can be entered too, as runc's can: its first process waits at the start gate.
  if (status !== "running" && status !== "created") throw new Error(`cannot exec in a ${status} container`);
  const context = found.record.exec;
  if (!context) throw new Error(`container ${found.id} has no record of how to enter it`);
  const processFile = flags.get("process");
  // As runc's: a process file is the whole process; without one, the flags
  // shape it (--env added to the container's, --user as uid[:gid], numeric).
  const processJson = processFile ? JSON.parse(Deno.readTextFileSync(processFile)) : {
    args: command,
    cwd: flags.get("cwd") ?? context.workdir,
    env: mergeEnv(context.env, envFlags(listFlag(flags, "env"))),
    user: numericUser(flags.get("user"), context.user ?? { uid: 0, gid: 0 }),
    terminal: flags.get("tty") === "true",
  };
  // Accepted as runc's flag, but an exec's chain has no room for them yet (create's has): said, not dropped.
  const preserve = countFlag(flags, "preserve-fds", "exec");
  if (preserve > 0) {
    throw new Error(`--preserve-fds ${preserve}: gcr passes extra descriptors to create's process, not to an exec's`);
  }
  if (!processFile && command.length === 0) throw new UsageError("gcr exec: give --process or a command");
  // The process object is read by the same code as config.json's.
  const spec = parseSpec(
    { ociVersion: OCI_VERSION, root: { path: "/" }, process: processJson },
    found.record.bundle ?? "/",
  );
  const planned = securityPlan({ process: spec.process, linux: { ...spec.linux, seccomp: undefined } }, "process");
  // As runc: a process without capabilities gets the container's five sets (not every capability).
  const security = spec.process.capabilities ? planned : { ...planned, capabilities: recordedCapabilities(context) };
  const seccomp = recordedSeccomp(context);
  const socketPath = flags.get("console-socket");
  if (spec.process.terminal && !socketPath) throw new UsageError("gcr exec: process.terminal needs --console-socket");
  const socket = socketPath ? moveFdAbove(connectUnix(socketPath), 16) : undefined;
  const detach = flags.get("detach") === "true";
  try {
    const outcome = await runSteps(
      execSteps({
        pid: found.record.initPid!,
        namespaces: context.namespaces,
        cgroupProcs: context.cgroupProcs,
        argv: spec.process.args,
        // HOME as runc's exec sets it, from the container's /etc/passwd as the container sees it.
        env: withHome(
          spec.process.env,
          spec.process.user.uid,
          () => readInRoot(containerRoot(found.record.initPid!, found.record.rootfs), "/etc/passwd"),
        ),
        workdir: spec.process.cwd,
        ids: entryIds(context),
        security: { ...security, ...(seccomp ? { seccomp } : {}) },
        dieWithParent: !detach,
        pidVia: pidNamespaceVia(context.namespaces, Deno.uid()),
        ...(socket !== undefined && spec.process.terminal ? { consoleSocket: CHAIN_FDS.firstFree } : {}),
      }),
      tracingToFile() ? "trace" : "run",
      {
        detach,
        ...(socket !== undefined ? { inherit: [{ from: socket, to: CHAIN_FDS.firstFree }] } : {}),
        onExec: (pid) => {
          const pidFile = flags.get("pid-file");
          if (pidFile) writeFileAtomically(pidFile, String(pid), 0o644);
        },
      },
    );
    if ("running" in outcome) return 0;
    return "exited" in outcome ? outcome.exited : 128 + outcome.signaled;
  } finally {
    if (socket !== undefined) libc().close(socket);
  }
}

/**
 * runc exec's `--user uid[:gid]` (numbers only, as runc takes them) over
 * the container's own process user, which runc's exec starts from.
 */
function numericUser(spec: string | undefined, base: { uid: number; gid: number }): { uid: number; gid: number } {
  if (spec === undefined) return { uid: base.uid, gid: base.gid };
  const match = spec.match(/^(\d+)(?::(\d+))?$/);
  if (!match) throw new UsageError(`gcr exec: --user takes uid[:gid] as numbers (got ${JSON.stringify(spec)})`);
  return { uid: Number(match[1]), gid: match[2] === undefined ? base.gid : Number(match[2]) };
}

/** runc exec's `--env KEY=VALUE`, each added to the container's environment. */
function envFlags(values: readonly string[]): string[] {
  const bad = values.find((entry) => entry.indexOf("=") < 1);
  if (bad !== undefined) throw new UsageError(`gcr exec: --env takes KEY=VALUE (got ${JSON.stringify(bad)})`);
  return [...values];
}

/**
 * `gcr exec …` in either form: runc's names a process file (--process) or
 * takes an option only runc's has, or enters a container made by `gcr
 * create` (its record names a bundle); otherwise it is the Go original's
 * and Docker's `exec NAME CMD`, which takes names and id prefixes.
 */
export function execCommand(args: readonly string[]): Promise<number> {
  // runc: whatever stops exec before the process runs is "exec failed: …", status 255.
  return runcForm(args) ? asRunc(255, () => ociExec(args), "exec failed: ") : gcrExec(args);
}

function runcForm(args: readonly string[]): boolean {
  if (args.some((a) => /^(--process|-p|--console-socket|--pid-file|--preserve-fds|--cwd)(=|$)/.test(a))) return true;
  let id: string;
  try {
    id = parseExecArgs(args).container;
  } catch {
    return false;
  }
  return ociFolder(id)?.record?.bundle !== undefined;
}
