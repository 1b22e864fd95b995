/**
 * `gcr kill`: Docker's form (`kill [-s SIGNAL] NAME…`: a signal to each
 * container's first process) or runc's (`kill [--all] ID [SIGNAL]`:
 * to its first process, or with --all to all of its processes), told apart as engines and users write them.
 *
 * @module
 */
import { asRunc, RUNC } from "./runc_errors.ts";
import { findContainer, recorded } from "../state/containers.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { forEachContainer } from "./each_container.ts";
import { signalContainer } from "../state/signals.ts";
import { parseSignal } from "./signals.ts";
import { currentStatus } from "../state/processes.ts";
import { containerPids, ociContainer } from "./oci_container.ts";
import { traceCall } from "../output/trace.ts";
import { sendSignal } from "../ffi/signal.ts";
import { SIGNALS } from "../ffi/constants.ts";

/** Whether `kill` has runc's form, `kill [--all] ID SIGNAL`, rather than Docker's `kill [-s SIG] NAME…`. */
function ociKillForm(args: readonly string[]): boolean {
  if (args.some((a) => a === "--all" || a === "-a")) return true;
  const positional = args.filter((a) => !a.startsWith("-"));
  if (args.some((a) => a === "-s" || a.startsWith("--signal"))) return false;
  if (positional.length === 1) {
    // `kill ID` of a container made by `gcr create` (it has a bundle): runc's form, SIGTERM.
    try {
      return findContainer(positional[0]!).record?.bundle !== undefined;
    } catch {
      return false;
    }
  }
  if (positional.length !== 2) return false;
  try {
    parseSignal(positional[1]!);
  } catch {
    return false;
  }
  try {
    findContainer(positional[1]!);
    return false;
  } catch {
    return true;
  }
}

/** `gcr kill [-s SIGNAL] <container>…`: a signal (default KILL) to each container's first process. */
function dockerKill(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { signal: "value" }, { s: "signal" }, "kill");
  const signal = parseSignal(flags.get("signal") ?? "KILL");
  if (rest.length === 0) throw new UsageError("gcr kill needs at least one container");
  return forEachContainer(rest, (ref) => {
    const found = recorded(ref);
    if (!signalContainer(found.record, signal)) throw new Error(`container ${found.id} is not running`);
    console.log(ref);
  });
}

/** `gcr kill …` in either form. */
export function killCommand(rest: readonly string[]): number | Promise<number> {
  if (ociKillForm(rest)) return asRunc(1, () => ociKillCommand(rest));
  return dockerKill(rest);
}

/** `gcr kill [--all] ID [SIGNAL]` (runc's form; SIGTERM by default). */
async function ociKillCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { all: "bool" }, { a: "all" }, "kill");
  if (rest.length < 1 || rest.length > 2) throw new UsageError("gcr kill takes an id and an optional signal");
  const signal = parseSignal(rest[1] ?? "TERM");
  const found = ociContainer(rest[0]!);
  const all = flags.get("all") === "true";
  // With --all, a stopped container is no error, as in runc: its first
  // process is gone, but others may be left in its cgroup (with a pid
  // namespace shared with a pod, nothing else ends them), and containerd's
  // shim sends `kill --all ID 9` after every such exit to end them.
  const status = currentStatus(found.record);
  if (!all && status === "stopped") throw new Error(RUNC.notRunning);
  const targets = all ? containerPids(found.record) : [found.record.initPid!];
  for (const pid of targets) {
    if (sendSignal(pid, signal)) traceCall(`kill(${pid}, ${signal}) = 0`);
    else traceCall(`kill(${pid}, ${signal}) = ESRCH: gone already`);
  }
  // As runc's: a SIGKILL is held by a frozen cgroup until it is thawed (other signals wait for resume).
  if (status === "paused" && signal === SIGNALS.SIGKILL) (await import("./oci_cgroup.ts")).thawContainer(found);
  return 0;
}
