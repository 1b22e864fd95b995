/**
 * gcr: a container runtime whose every step is visible. This is its entry
 * and its command table: which verb goes to which module, runc's global
 * options (before the verb), and errors to exit statuses. Exit status: the
 * command's own; 128+N when it was killed by signal N; 126/127 when it
 * could not be run or found; 125 when gcr itself failed.
 *
 * Commands that engines call often (create, start, state, delete) and the
 * image code are imported only when asked for: a verb loads what it needs.
 *
 * @module
 */
import { runCommand } from "./commands/run.ts";
import { USAGE, UsageError } from "./commands/usage.ts";
import { setQuiet } from "./output/log.ts";
import { OCI_VERSION, VERSION } from "./output/version.ts";
import { StepError } from "./runner/runner.ts";

/** runc's global options, before the command: where records live, where errors go. */
interface GlobalOptions {
  log?: string;
  logFormat: "text" | "json";
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
    const takes = ["root", "log", "log-format", "rootless", "criu"].includes(name);
    if (!takes && !["systemd-cgroup", "debug"].includes(name)) break;
    const value = takes ? (at > 0 ? arg.slice(at + 1) : argv[++i]) : undefined;
    if (takes && value === undefined) throw new UsageError(`option --${name} needs a value`);
    if (name === "root") Deno.env.set("GCR_RUN", value!);
    else if (name === "log") options.log = value!;
    else if (name === "log-format") {
      if (value !== "json" && value !== "text") {
        throw new UsageError(`--log-format must be text or json (got ${value})`);
      }
      options.logFormat = value;
    } else if (name === "systemd-cgroup") options.systemdCgroup = true;
    else if (name === "rootless" && !["true", "false", "auto"].includes(value!)) {
      throw new UsageError(`--rootless must be true, false or auto (got ${value})`);
    }
  }
  return { options, rest: argv.slice(i) };
}

/** An error for `--log`: a JSON line as runc writes it, or plain text. */
function logError(options: GlobalOptions, message: string): void {
  if (!options.log) return;
  const line = options.logFormat === "json"
    ? JSON.stringify({ level: "error", msg: message, time: new Date().toISOString() })
    : `${new Date().toISOString()} error: ${message}`;
  try {
    Deno.writeTextFileSync(options.log, line + "\n", { append: true, create: true, mode: 0o600 });
  } catch { /* the error still goes to stderr */ }
}

async function main(argv: readonly string[]): Promise<number> {
  const global = parseGlobalOptions(argv);
  const [command, ...rest] = global.rest;
  // The OCI verbs: create's stdio is the container's, so gcr's own log lines must not mix into its output.
  const oci = () => setQuiet(true);
  try {
    switch (command) {
      case "create":
        oci();
        return await (await import("./commands/create.ts")).createCommand(rest, global.options.systemdCgroup);
      case "start":
        oci();
        return await (await import("./commands/start.ts")).startCommand(rest);
      case "state":
        oci();
        return await (await import("./commands/state.ts")).stateCommand(rest);
      case "delete":
        oci();
        return await (await import("./commands/delete.ts")).deleteCommand(rest);
      case "pause":
        oci();
        return await (await import("./commands/pause.ts")).pauseCommand(rest);
      case "resume":
        oci();
        return await (await import("./commands/resume.ts")).resumeCommand(rest);
      case "features":
        oci();
        return await (await import("./commands/features.ts")).featuresCommand();
      case "--version":
      case "-v":
      case "version":
        console.log(`gcr version ${VERSION}\nspec: ${OCI_VERSION}`);
        return 0;
      case "run":
        return await runCommand(rest);
      case "explain":
        return await (await import("./commands/explain.ts")).explainCommand(rest);
      case "pull": {
        const { parsePullArgs, pullCommand } = await import("./commands/pull.ts");
        return await pullCommand(parsePullArgs(rest, "pull"));
      }
      case "__monitor":
        return await (await import("./commands/monitor.ts")).monitorCommand(rest);
      case "ps":
        return await (await import("./commands/ps.ts")).psCommand(rest);
      case "exec":
        return await (await import("./commands/exec.ts")).execCommand(rest);
      case "logs":
        return await (await import("./commands/logs.ts")).logsCommand(rest);
      case "stop":
        return await (await import("./commands/stop.ts")).stopCommand(rest);
      case "kill":
        return await (await import("./commands/kill.ts")).killCommand(rest);
      case "inspect":
        return await (await import("./commands/inspect.ts")).inspectCommand(rest);
      case "rm":
        return await (await import("./commands/rm.ts")).rmCommand(rest);
      case "prune":
        return await (await import("./commands/prune.ts")).pruneCommand(rest);
      case "images":
        return await (await import("./commands/images.ts")).imagesCommand(rest);
      case "help":
      case "-h":
      case "--help":
        console.log(USAGE);
        return 0;
      case undefined:
        throw new UsageError("missing command");
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof Error) logError(global.options, error.message);
    if (error instanceof UsageError) {
      console.error(`gcr: ${error.message} (see: gcr help)`);
      return 125;
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
