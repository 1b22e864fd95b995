/**
 * Compiled filters kept on disk, so that a container start does not pay
 * for libseccomp each time.
 *
 * @module
 */
import { compileProfile } from "./compile.ts";
import type { SeccompProfile } from "./profile.ts";

/** Where compiled filters are kept: gcr's cache folder, as for image blobs. */
function filterCacheDir(): string {
  const root = Deno.env.get("GCR_CACHE") ??
    ((Deno.uid() ?? 0) === 0
      ? "/var/cache/gcr"
      : `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`}/gcr`);
  return `${root}/seccomp`;
}

/**
 * FNV-1a, 32 bits, over the length and every 7th character: a file name for
 * a profile, not a check (the file holds the whole profile, compared before
 * use, so two profiles sharing a name only cost a recompile). All of a 10 KB
 * profile took 3 ms of every start.
 */
function fileName(text: string): string {
  let hash = Math.imul(0x811c9dc5 ^ text.length, 0x01000193);
  for (let i = 0; i < text.length; i += 7) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/**
 * The profile as the cache file holds it, the architecture included. Argument
 * comparisons hold BigInts, which JSON writes as `"5n"`: converted before
 * JSON.stringify rather than by a replacer, which cost ~0.3 ms of every start
 * (a call per key and value, cold) where this costs ~0.1.
 */
export function cacheKey(profile: SeccompProfile): string {
  const rules = profile.rules.map((rule) =>
    rule.args.length === 0
      ? rule
      : { ...rule, args: rule.args.map((arg) => ({ ...arg, value: `${arg.value}n`, valueTwo: `${arg.valueTwo}n` })) }
  );
  return JSON.stringify({ arch: Deno.build.arch, profile: { ...profile, rules } });
}

/**
 * compileProfile, remembered: building a filter through libseccomp costs
 * ~7 ms of every container start (hundreds of cold FFI calls), and the same
 * profile always compiles to the same program. A cache file holds the
 * profile as JSON and then the program; it is used only when that JSON is
 * exactly this profile's, and only from a folder no other user can write
 * (a filter from elsewhere could be a weaker one).
 */
export function cachedCompile(profile: SeccompProfile): Uint8Array {
  const json = cacheKey(profile);
  const dir = filterCacheDir();
  const path = `${dir}/${fileName(json)}.bpf`;
  const trusted = (() => {
    try {
      const info = Deno.statSync(dir);
      return info.uid === (Deno.uid() ?? 0) && ((info.mode ?? 0) & 0o022) === 0;
    } catch {
      return false;
    }
  })();
  const header = new TextEncoder().encode(json);
  if (trusted) {
    try {
      const file = Deno.readFileSync(path);
      const length = new DataView(file.buffer, file.byteOffset).getUint32(0, true);
      if (length === header.length && new TextDecoder().decode(file.subarray(4, 4 + length)) === json) {
        return file.slice(4 + length);
      }
    } catch { /* not cached yet */ }
  }
  const program = compileProfile(profile);
  try {
    if (!trusted) {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const info = Deno.statSync(dir);
      if (info.uid !== (Deno.uid() ?? 0) || ((info.mode ?? 0) & 0o022) !== 0) return program;
    }
    const entry = new Uint8Array(4 + header.length + program.length);
    new DataView(entry.buffer).setUint32(0, header.length, true);
    entry.set(header, 4);
    entry.set(program, 4 + header.length);
    const temporary = `${path}.${Deno.pid}.tmp`;
    Deno.writeFileSync(temporary, entry, { mode: 0o600 });
    Deno.renameSync(temporary, path);
  } catch { /* a cache we cannot write: compile every time */ }
  return program;
}
