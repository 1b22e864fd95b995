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

let folder: string | undefined;
let file: Deno.FsFile | undefined;
let started = 0;
let commandLine: readonly string[] = [];

/** The global option: the folder, and gcr's own arguments for each part's first line (main.ts). */
export function setTraceDir(dir: string | undefined, argv: readonly string[]): void {
  folder = dir;
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
  if (folder === undefined || file) return;
  Deno.mkdirSync(folder, { recursive: true, mode: 0o700 });
  const path = `${folder}/${id}.trace`;
  // O_APPEND: verbs of one container run side by side (exec while kill), each line lands whole.
  // gcr runs as root: a symlink planted at the file's name (a folder others
  // may write to) would have it create or append to whatever the link names.
  // A new file is made with O_EXCL, which never follows a link; an existing
  // name is opened without O_CREAT, and nothing is written unless the name
  // is the very regular file that was opened.
  const opened = openOwn(path);
  const named = Deno.lstatSync(path), got = opened.statSync();
  if (!named.isFile || named.ino !== got.ino || named.dev !== got.dev) {
    opened.close();
    throw new Error(`--trace-dir: ${path} is not a regular file of its own (a symlink?): not tracing into it`);
  }
  file = opened;
  const words = commandLine.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : JSON.stringify(word)));
  write(`── ${new Date().toISOString()} pid ${Deno.pid}: gcr ${words.join(" ")}`);
}

/** `path` for appending: made new (O_EXCL), or opened as it is. */
function openOwn(path: string): Deno.FsFile {
  try {
    return Deno.openSync(path, { append: true, createNew: true, mode: 0o600 });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    try {
      return Deno.openSync(path, { append: true });
    } catch {
      throw new Error(`--trace-dir: ${path} is not a regular file of its own (a symlink?): not tracing into it`);
    }
  }
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

/** Only into the trace file: what a verb does that has no place on a terminal (kill's calls, delete's removals). */
export function traceCall(line: string): void {
  if (file) write(`    ${line}`);
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
  file!.writeSync(encoder.encode(line + "\n"));
}
