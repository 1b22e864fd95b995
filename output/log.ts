/**
 * Log lines on stderr in the format of Go's `log` package, as the Go
 * original prints them: `2025/03/16 08:56:43 running as pid: 1 | …`.
 *
 * @module
 */

const encoder = new TextEncoder();
let quiet = false;

/** Silences `log` (the -q flag); errors are still printed. */
export function setQuiet(value: boolean): void {
  quiet = value;
}

/** The local time as Go's log.LstdFlags prints it. */
export function timestamp(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}/${pad(now.getMonth() + 1)}/${pad(now.getDate())} ` +
    `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
}

/**
 * Writes a timestamped line to stderr unless quiet. A function is called
 * only when its line is shown: some lines cost reads of /proc to make.
 */
export function log(message: string | (() => string)): void {
  if (quiet) return;
  Deno.stderr.writeSync(encoder.encode(`${timestamp()} ${typeof message === "string" ? message : message()}\n`));
}

/** Writes a line to stderr as is (trace detail, pauses); silenced by -q too. */
export function say(message: string): void {
  if (!quiet) Deno.stderr.writeSync(encoder.encode(message + "\n"));
}

/** Writes a line to stderr even when quiet: --step's prompts must be seen. */
export function prompt(message: string): void {
  Deno.stderr.writeSync(encoder.encode(message + "\n"));
}

/** The `running as` line of the Go original. */
export function runningAs(pid: number, uid: number, gid: number): string {
  return `running as pid: ${pid} | uid: ${uid} | gid: ${gid}`;
}
