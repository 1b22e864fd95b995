/**
 * Where `--trace` lines go. Without a trace folder: stderr, for a person at
 * a terminal (`gcr run --trace`, `gcr create --trace`). With the global
 * option `--trace-dir DIR`: appended to `DIR/<container id>.trace`, one file
 * per container, so that what an engine asks of gcr can be watched: an
 * engine passes runtime options through (Docker's `runtimeArgs`; for podman,
 * whose cleanup process drops `--runtime-flag`, and containerd's shim, a
 * wrapper given as the runtime or `BinaryName`) but owns
 * the runtime's stdio, which carries the container's own output or is read
 * as the verb's answer (`state`), so the trace cannot go there.
 *
 * Each verb's part of the file starts with the command line the engine ran
 * and ends with its exit status and how long it took: every call an engine
 * makes is in the file, those that only read (`state`) as one line each.
 *
 * @module
 */
import { say } from "./log.ts";

const encoder = new TextEncoder();

/** An open trace file: commands/trace_file.ts makes it, loaded only when there is a trace folder. */
export interface TraceFile {
  write(bytes: Uint8Array): void;
  close(): void;
}

/** The trace folder, and how a file in it is opened (commands/trace_file.ts). */
export interface TraceDir {
  readonly dir: string;
  readonly open: (path: string) => TraceFile;
}

let traceDir: TraceDir | undefined;
let file: TraceFile | undefined;
let started = 0;
let commandLine: readonly string[] = [];

/** The global option, and gcr's own arguments for each part's first line (main.ts). */
export function setTraceDir(target: TraceDir | undefined, argv: readonly string[]): void {
  traceDir = target;
  commandLine = argv;
  started = performance.now();
}

/**
 * Opens the container's trace file once its id is known and valid (ids are
 * checked before they become a path: `../x` must not name a file outside
 * the folder). Called by every verb that names a container; a second call
 * for the same run is a no-op.
 */
export function traceContainer(id: string): void {
  if (!traceDir || file) return;
  Deno.mkdirSync(traceDir.dir, { recursive: true, mode: 0o700 });
  file = traceDir.open(`${traceDir.dir}/${id}.trace`);
  const words = commandLine.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : JSON.stringify(word)));
  write(`── ${new Date().toISOString()} pid ${Deno.pid}: gcr ${words.join(" ")}`);
}

/** Whether this run traces into a file: the verbs then trace their steps whether or not `--trace` was given. */
export function tracingToFile(): boolean {
  return file !== undefined;
}

/** One trace line: into the container's trace file when there is one, else on stderr. */
export function trace(line: string): void {
  if (file) write(line);
  else say(line);
}

/**
 * Only into the trace file: what a verb does that has no place on a terminal
 * (kill's calls, delete's removals). A function is called only when there
 * is a trace file: a line that looks at the file system costs nothing
 * otherwise.
 */
export function traceCall(line: string | (() => string)): void {
  if (file) write(`    ${typeof line === "function" ? line() : line}`);
}

/** The verb's last line: its exit status (and error), and how long it ran. */
export function endTrace(code: number, error?: string): void {
  if (!file) return;
  const took = (performance.now() - started).toFixed(1);
  write(`── exit ${code}${error ? `: ${error}` : ""}  ${took} ms`);
  file.close();
  file = undefined;
}

function write(line: string): void {
  file!.write(encoder.encode(line + "\n"));
}
