/**
 * `gcr kill`: Docker's form (`kill [-s SIGNAL] NAME…`, commands/lifecycle.ts)
 * or runc's (`kill [--all] ID [SIGNAL]`, commands/oci.ts), told apart as
 * engines and users write them.
 *
 * @module
 */
import { findContainer } from "../state/containers.ts";
import { killCommand as dockerKill, parseSignal } from "./lifecycle.ts";

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

/** `gcr kill …` in either form. */
export async function killCommand(rest: readonly string[]): Promise<number> {
  if (ociKillForm(rest)) return (await import("./oci.ts")).ociKillCommand(rest);
  return dockerKill(rest);
}
