/**
 * gcr: a container runtime whose every step is visible. This is its entry
 * and its command table: which verb goes to which module, runc's global
 * options (before the verb), and errors to exit statuses. Exit status: the
 * command's own; 128+N when it was killed by signal N; 126/127 when it
 * could not be run or found; 125 when gcr itself failed.
 *
 * @module
 */
import { USAGE, UsageError } from "./commands/usage.ts";
import { setQuiet } from "./output/log.ts";
import { OCI_VERSION, VERSION } from "./output/version.ts";
import { StepError } from "./runner/step_error.ts";
import { logError, setRuntimeLog } from "./output/runtime_log.ts";
import { asRunc, RuncError } from "./commands/runc_errors.ts";
import { endTrace, setTraceDir } from "./output/trace.ts";
import { parseRootless, setRootless } from "./host/rootless.ts";

/** runc's global options, before the command: where records live, where errors go. */
interface GlobalOptions {
  log?: string;
  logFormat: "text" | "json";
  /** gcr's own: a trace file per container in this folder (output/trace.ts). */
  traceDir?: string;
  systemdCgroup: boolean;
}

function parseGlobalOptions(argv: readonly string[]): { options: GlobalOptions; rest: string[] } {
  const options: GlobalOptions = { logFormat: "text", systemdCgroup: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--") || arg === "--") break;
    const at = arg.indexOf("=");
    const name = at > 0 ? arg.slice(2, at) : arg.slice(2);
    const takes = ["root", "log", "log-format", "rootless", "criu", "trace-dir"].includes(name);
    if (!takes && !["systemd-cgroup", "debug"].includes(name)) break;
    const value = takes ? (at > 0 ? arg.slice(at + 1) : argv[++i]) : undefined;
    if (takes && value === undefined) throw new UsageError(`option --${name} needs a value`);
    if (name === "root") Deno.env.set("GCR_RUN", value!);
    else if (name === "log") options.log = value!;
    else if (name === "trace-dir") {
      if (!value) throw new UsageError("--trace-dir needs a folder");
      options.traceDir = value;
    } else if (name === "log-format") {
      if (value !== "json" && value !== "text") {
        throw new UsageError(`--log-format must be text or json (got ${value})`);
      }
      options.logFormat = value;
    } else if (name === "systemd-cgroup") options.systemdCgroup = true;
    else if (name === "rootless") {
      const setting = parseRootless(value!);
      if (!setting) throw new UsageError(`--rootless must be true, false or auto (got ${JSON.stringify(value)})`);
      setRootless(setting);
    }
  }
  return { options, rest: argv.slice(i) };
}

type Command = (args: readonly string[], global: GlobalOptions) => number | Promise<number>;

/** The version line engines log. */
function versionCommand(): number {
  console.log(`gcr version ${VERSION}\nspec: ${OCI_VERSION}`);
  return 0;
}

/**
 * Every verb and the module that runs it, each loaded only when asked for,
 * so that a verb loads only the code it uses: Deno's cost grows with the
 * code a process loads, even code it never calls (measured: bench/README.md).
 * The bundle makes each verb's module a chunk of its own and the code they
 * share chunks of their own; main.ts's own imports are what every verb
 * needs to start and to report an error. launch/join_chunks.ts finds this
 * table in the bundle and joins each verb's chunks into it: an import here
 * must be a verb (one per process), and one that may load beside any verb
 * belongs outside it.
 */
const COMMANDS: Readonly<Record<string, Command>> = {
  // Docker's and the Go original's
  run: async (args) => (await import("./commands/run.ts")).runCommand(args),
  explain: async (args) => (await import("./commands/explain.ts")).explainCommand(args),
  exec: async (args) => (await import("./commands/exec.ts")).execCommand(args), // runc's form too: exec --process
  ps: async (args) => (await import("./commands/ps.ts")).psCommand(args), // runc's form too: ps ID
  logs: async (args) => (await import("./commands/logs.ts")).logsCommand(args),
  stop: async (args) => (await import("./commands/stop.ts")).stopCommand(args),
  kill: async (args) => (await import("./commands/kill.ts")).killCommand(args), // runc's form too: kill [--all] ID SIGNAL
  inspect: async (args) => (await import("./commands/inspect.ts")).inspectCommand(args),
  rm: async (args) => (await import("./commands/rm.ts")).rmCommand(args),
  prune: async (args) => (await import("./commands/prune.ts")).pruneCommand(args),
  pull: async (args) => {
    const { parsePullArgs, pullCommand } = await import("./commands/pull.ts");
    return await pullCommand(parsePullArgs(args, "pull"));
  },
  images: async (args) => (await import("./commands/images.ts")).imagesCommand(args),
  // gcr run -d's two ends, run by gcr-monitor: make the container, then take it apart
  __monitor: async (args) => (await import("./commands/monitor.ts")).monitorCommand(args),
  __exited: async (args) => (await import("./commands/monitor.ts")).exitedCommand(args),
  // runc's, as engines call them
  create: async (args, global) => (await import("./commands/create.ts")).createCommand(args, global.systemdCgroup),
  start: async (args) => (await import("./commands/start.ts")).startCommand(args),
  state: async (args) => (await import("./commands/state.ts")).stateCommand(args),
  delete: async (args) => (await import("./commands/delete.ts")).deleteCommand(args),
  pause: async (args) => (await import("./commands/pause.ts")).pauseCommand(args),
  resume: async (args) => (await import("./commands/resume.ts")).resumeCommand(args),
  update: async (args) => (await import("./commands/update.ts")).updateCommand(args),
  features: async () => (await import("./commands/features.ts")).featuresCommand(),
  // and the usual ones
  version: versionCommand,
  "--version": versionCommand,
  "-v": versionCommand,
  help: () => (console.log(USAGE), 0),
  "--help": () => (console.log(USAGE), 0),
  "-h": () => (console.log(USAGE), 0),
};

/** runc's verbs: their stdio is the container's (create) or an engine's, so gcr's own log lines stay out of it. */
const OCI_VERBS = new Set(["create", "start", "state", "delete", "pause", "resume", "update", "features"]);

async function main(argv: readonly string[]): Promise<number> {
  let error: string | undefined;
  const code = await runVerb(argv, (message) => error = message);
  endTrace(code, error);
  return code;
}

async function runVerb(argv: readonly string[], failed: (message: string) => void): Promise<number> {
  let global: ReturnType<typeof parseGlobalOptions>;
  try {
    global = parseGlobalOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`gcr: ${error.message} (see: gcr help)`);
    return 125;
  }
  const [verb, ...rest] = global.rest;
  setRuntimeLog(global.options.log, global.options.logFormat);
  const traceDir = global.options.traceDir;
  setTraceDir(
    traceDir ? { dir: traceDir, open: (await import("./commands/trace_file.ts")).openTraceFile } : undefined,
    argv,
  );
  try {
    if (verb === undefined) throw new UsageError("missing command");
    const command = Object.hasOwn(COMMANDS, verb) ? COMMANDS[verb] : undefined;
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(verb)}`);
    if (OCI_VERBS.has(verb)) {
      setQuiet(true);
      return await asRunc(1, () => command(rest, global.options));
    }
    return await command(rest, global.options);
  } catch (error) {
    if (error instanceof Error) {
      logError(error.message);
      failed(error.message);
    }
    if (error instanceof UsageError) {
      console.error(`gcr: ${error.message} (see: gcr help)`);
      return 125;
    }
    if (error instanceof RuncError) {
      console.error(`gcr: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof StepError) {
      console.error(`gcr: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof Error && !(error instanceof TypeError || error instanceof RangeError)) {
      console.error(`gcr: ${error.message}`);
      return 125;
    }
    throw error;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
