/**
 * `gcr kill`: Docker's form (`kill [-s SIGNAL] NAME…`: a signal to each
 * container's first process) or runc's (`kill [--all] ID [SIGNAL]`,
 * commands/oci.ts), told apart as engines and users write them.
 *
 * @module
 */
import { findContainer } from "../state/containers.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { recorded } from "../state/containers.ts";
import { signalContainer } from "../state/signals.ts";
import { parseSignal } from "./signals.ts";

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
function dockerKill(args: readonly string[]): number {
  const { flags, rest } = parseFlags(args, { signal: "value" }, { s: "signal" }, "kill");
  const signal = parseSignal(flags.get("signal") ?? "KILL");
  if (rest.length === 0) throw new UsageError("gcr kill needs at least one container");
  let status = 0;
  for (const ref of rest) {
    try {
      const found = recorded(ref);
      if (!signalContainer(found.record, signal)) throw new Error(`container ${found.id} is not running`);
      console.log(ref);
    } catch (error) {
      console.error(`gcr: ${(error as Error).message}`);
      status = 1;
    }
  }
  return status;
}

/** `gcr kill …` in either form. */
export async function killCommand(rest: readonly string[]): Promise<number> {
  if (ociKillForm(rest)) return (await import("./oci.ts")).ociKillCommand(rest);
  return dockerKill(rest);
}
