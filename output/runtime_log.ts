/**
 * runc's `--log` and `--log-format`: where an engine reads what the runtime
 * had to say (containerd's shim and podman read the file when a verb fails).
 * Errors and warnings go there as runc writes them, a JSON line
 * (`{"level":"warning","msg":…,"time":…}`) or a line of text; without
 * `--log`, to stderr, where runc's logger writes by default.
 *
 * @module
 */

const encoder = new TextEncoder();
let destination: { readonly path: string; readonly format: "text" | "json" } | undefined;

/** Sets where the log goes (main.ts, from the global options). */
export function setRuntimeLog(path: string | undefined, format: "text" | "json"): void {
  destination = path === undefined ? undefined : { path, format };
}

function write(level: "error" | "warning", message: string): boolean {
  if (!destination) return false;
  const time = new Date().toISOString();
  const line = destination.format === "json"
    ? JSON.stringify({ level, msg: message, time })
    : `${time} ${level}: ${message}`;
  try {
    Deno.writeTextFileSync(destination.path, line + "\n", { append: true, create: true, mode: 0o600 });
    return true;
  } catch {
    return false;
  }
}

/** An error for the log; the caller prints it on stderr as well, as runc does. */
export function logError(message: string): void {
  write("error", message);
}

/**
 * Something gcr accepted but could not do as asked, and the container runs
 * anyway (runc's behaviour for the same input): never dropped unsaid.
 */
export function warn(message: string): void {
  if (!write("warning", message)) Deno.stderr.writeSync(encoder.encode(`gcr: warning: ${message}\n`));
}

/** A warning for `--log` only: what an engine may want to know and a user at a terminal did not ask about. */
export function warnInLog(message: string): void {
  write("warning", message);
}
