/**
 * What `gcr run` and `gcr exec` take alike: `-e` entries, `-w` folders, and
 * how environment entries combine.
 *
 * @module
 */
import { UsageError } from "../commands/usage.ts";

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

/** KEY=VALUE entries: `base` with `extra` applied in order (a later key wins, in its old place). */
export function mergeEnv(base: readonly string[], extra: readonly string[]): string[] {
  const env = new Map<string, string>();
  for (const entry of [...base, ...extra]) {
    const at = entry.indexOf("=");
    env.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return [...env].map(([key, val]) => `${key}=${val}`);
}
