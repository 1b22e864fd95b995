/**
 * Flags of the small commands (ps, stop, kill, rm, logs, inspect, and the
 * OCI verbs): `--name value`, `--name=value`, `-n value`, booleans alone;
 * they end at the first argument that is not one, or at `--`. `run` and
 * `exec` parse their own: their options end at the image or container, and
 * everything after belongs to the command.
 *
 * @module
 */
import { UsageError } from "./usage.ts";

/** runc-style flags: `--name value`, `--name=value`, `-n value`; booleans without a value. */
export function parseFlags(
  args: readonly string[],
  spec: Record<string, "bool" | "value">,
  aliases: Record<string, string>,
  command: string,
): { flags: Map<string, string>; rest: string[] } {
  const flags = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (rest.length > 0 || !arg.startsWith("-") || arg === "-") {
      rest.push(arg);
      continue;
    }
    if (arg === "--") {
      rest.push(...args.slice(i + 1));
      break;
    }
    const at = arg.indexOf("=");
    const raw = (at > 0 ? arg.slice(0, at) : arg).replace(/^--?/, "");
    const name = aliases[raw] ?? raw;
    const kind = spec[name];
    if (!kind) throw new UsageError(`gcr ${command}: unknown option ${arg}`);
    if (kind === "bool") flags.set(name, at > 0 ? arg.slice(at + 1) : "true");
    else {
      const value = at > 0 ? arg.slice(at + 1) : args[++i];
      if (value === undefined) throw new UsageError(`gcr ${command}: option ${arg} needs a value`);
      flags.set(name, value);
    }
  }
  return { flags, rest };
}
