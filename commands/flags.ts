/**
 * Flags of the small commands (ps, stop, kill, rm, logs, inspect, and the
 * OCI verbs): `--name value`, `--name=value`, `-n value`, booleans alone;
 * they end at the first argument that is not one, or at `--`. `run` and
 * `exec` take Docker's kind (scanOptions): their options end at the image or
 * container, and everything after belongs to the command; both take `-e`
 * and `-w` alike (envOption, workdirOption).
 *
 * @module
 */
import { UsageError } from "./usage.ts";

/**
 * runc-style flags: `--name value`, `--name=value`, `-n value`; booleans
 * without a value; a "list" flag may be given again, its values joined by
 * NUL (listFlag splits them).
 */
export function parseFlags(
  args: readonly string[],
  spec: Record<string, "bool" | "value" | "list">,
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
      const before = flags.get(name);
      flags.set(name, kind === "list" && before !== undefined ? `${before}\0${value}` : value);
    }
  }
  return { flags, rest };
}

/** A count flag (`--preserve-fds N`): 0 when absent; a usage error unless it is 0-999. */
export function countFlag(flags: Map<string, string>, name: string, command: string): number {
  const text = flags.get(name) ?? "0";
  if (!/^\d{1,3}$/.test(text)) throw new UsageError(`gcr ${command}: --${name} takes a count (got ${text})`);
  return Number(text);
}

/** The values of a "list" flag, in the order given. */
export function listFlag(flags: Map<string, string>, name: string): string[] {
  const joined = flags.get(name);
  return joined === undefined ? [] : joined.split("\0");
}

/**
 * Docker-style options before the first positional argument (run's image,
 * exec's container), after which everything is the command's: `--name
 * value`, `--name=value`, `-n value`, one or two dashes (as Go's flag package
 * accepts), `--` to end them, and `-it`/`-dit` as their single letters.
 * `handle` gets each option's name without dashes, the option as typed (for
 * messages), and `value()` to take its value. Returns the index of the first
 * argument after the options. Hand-written because util.parseArgs cannot
 * stop at the first positional.
 */
export function scanOptions(
  args: readonly string[],
  messagePrefix: string,
  handle: (name: string, typed: string, value: () => string) => void,
): number {
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return i + 1;
    if (!arg.startsWith("-") || arg === "-") break;
    if (/^-[dit]{2,3}$/.test(arg)) {
      for (const letter of arg.slice(1)) {
        handle(letter, `-${letter}`, () => {
          throw new UsageError(`${messagePrefix}option -${letter} takes no value`);
        });
      }
      continue;
    }
    const at = arg.indexOf("=");
    const typed = at > 0 ? arg.slice(0, at) : arg;
    const inline = at > 0 ? arg.slice(at + 1) : undefined;
    handle(typed.replace(/^--?/, ""), typed, () => {
      if (inline !== undefined) return inline;
      const next = args[++i];
      if (next === undefined) throw new UsageError(`${messagePrefix}option ${typed} needs a value`);
      return next;
    });
  }
  return i;
}

/** `-e KEY=VALUE` as given, or `-e KEY` taken from gcr's own environment (nothing when gcr has none). */
export function envOption(entry: string): string | undefined {
  if (!entry.includes("=")) {
    const fromHost = Deno.env.get(entry);
    return fromHost === undefined ? undefined : `${entry}=${fromHost}`;
  }
  if (entry.startsWith("=")) {
    throw new UsageError(`invalid environment entry ${JSON.stringify(entry)}: the name is empty`);
  }
  return entry;
}

/** `-w DIR`: a working directory inside the container, which must be absolute. */
export function workdirOption(dir: string): string {
  if (!dir.startsWith("/")) throw new UsageError(`the working directory must be absolute: ${JSON.stringify(dir)}`);
  return dir;
}
