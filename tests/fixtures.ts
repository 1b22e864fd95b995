/**
 * Fixtures for the integration tests: real root filesystems, real test users,
 * and a way to run `gcr` as a user would, with a timeout that kills it.
 *
 * Everything lives under FIXTURES (`$GCR_TEST_CACHE`, default
 * /var/tmp/gcr-test), kept between runs:
 *
 *   rootfs/busybox   built by gcr itself from the host's static busybox
 *   rootfs/debian    debootstrap --variant=minbase bookworm (about 40 s)
 *   src/             a world-readable copy of gcr's source, refreshed each run,
 *                    so that unprivileged test users can run it even when the
 *                    repository lives where they cannot read (e.g. /root)
 *   tmp/             scratch copies of root filesystems, removed by each test
 *
 * @module
 */
import { subordinateRange } from "../plan/id_maps.ts";
import { exists, readTextOr, removeTree } from "../host/files.ts";
import { sleep } from "../host/time.ts";
import { listContainers } from "../state/containers.ts";
import { isRunning } from "../state/processes.ts";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { assertEquals } from "./helpers.ts";

/** The repository's root folder (the one holding the `gcr` script). */
export const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/+$/, "");
/** The `gcr` entry script. */
export const GCR = join(REPO, "gcr");
/** Where the test root filesystems and the source copy live. */
export const FIXTURES = resolve(Deno.env.get("GCR_TEST_CACHE") ?? "/var/tmp/gcr-test");
/** The images folder passed to gcr as --rootfs-dir. */
export const ROOTFS_DIR = join(FIXTURES, "rootfs");
export const BUSYBOX = join(ROOTFS_DIR, "busybox");
export const DEBIAN = join(ROOTFS_DIR, "debian");
/** The world-readable copy of gcr that test users run. */
export const SRC_DIR = join(FIXTURES, "src");
/** Scratch folder for per-test copies of root filesystems. */
export const SCRATCH = join(FIXTURES, "tmp");
/** gcr's state directory for the tests run as root (containers' upper folders, container.json). */
export const STATE_DIR = join(FIXTURES, "state");
// Every gcr a test starts as root (also through run() or a helper of its
// own) keeps its containers' state there, not in /var/lib/gcr.
if (!Deno.env.get("GCR_STATE")) Deno.env.set("GCR_STATE", STATE_DIR);
// Runs without --rm keep their folders, as Docker keeps stopped containers:
// those of earlier test runs (stopped, over an hour old) are removed here.
for (const found of listContainers(STATE_DIR)) {
  let created = Date.parse(found.record?.created ?? "");
  try {
    created ||= Deno.statSync(found.paths.dir).mtime?.getTime() ?? 0;
  } catch { /* gone meanwhile */ }
  if (Date.now() - created > 3600_000 && !(found.record && isRunning(found.record))) {
    try {
      removeTree(found.paths.dir);
    } catch { /* left for the next run */ }
  }
}

/**
 * The containers a state directory (a test's GCR_STATE) holds: data folders
 * and runtime folders (records) both count, so --rm must leave neither.
 */
export function containerIds(state: string): string[] {
  const names = (folder: string) => {
    try {
      return [...Deno.readDirSync(join(state, folder))].filter((e) => e.isDirectory).map((e) => e.name);
    } catch {
      return [];
    }
  };
  return [...new Set([...names("containers"), ...names("run")])].sort();
}

/** Rootless test users: one with a subordinate id range, one without. */
export const RANGED_USER = "gcrtest";
export const SOLO_USER = "gcrsolo";

const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// Small file-system and host helpers

/** The absolute path of `program` on $PATH (plus the sbin folders), or undefined. */
export function which(program: string): string | undefined {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const dir of dirs.filter(Boolean)) {
    try {
      const info = Deno.statSync(join(dir, program));
      if (info.isFile && ((info.mode ?? 0) & 0o111)) return join(dir, program);
    } catch { /* not here */ }
  }
  return undefined;
}

/**
 * The first folder on the way to `path` (inclusive) that other users cannot
 * enter, or undefined when they can reach it. Missing tail components are
 * skipped: the fixtures create them world-readable.
 */
export function closedToOthers(path: string): string | undefined {
  let current = "/";
  for (const part of path.split("/").filter(Boolean)) {
    current = join(current, part);
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(current);
    } catch {
      return undefined;
    }
    // Others need to search folders and execute the final file (deno).
    if (((info.mode ?? 0) & 0o001) === 0) return current;
  }
  return undefined;
}

/** Why a test that runs containers cannot run here (not root), or undefined. */
export function missingRoot(): string | undefined {
  return Deno.uid() === 0 ? undefined : "the integration tests run real containers as root";
}

/** Which of `programs` are not installed, or undefined. */
export function missingPrograms(...programs: string[]): string | undefined {
  const missing = programs.filter((p) => !which(p));
  return missing.length ? `not installed: ${missing.join(", ")}` : undefined;
}

/** Why a test that runs containers and needs `programs` cannot run here, or undefined. */
export function needs(...programs: string[]): string | undefined {
  return missingRoot() ?? missingPrograms(...programs);
}

/** Why rootless tests cannot run here (test users could not reach gcr or the fixtures), or undefined. */
export function rootlessUnavailable(): string | undefined {
  const missing = needs("setpriv", "useradd");
  if (missing) return missing;
  const closed = closedToOthers(FIXTURES) ?? closedToOthers(Deno.execPath());
  if (closed) return `other users cannot traverse ${closed} (needed to reach ${FIXTURES} and ${Deno.execPath()})`;
  return undefined;
}

/** Why the Debian rootfs is not available and cannot be built, or undefined. */
export function debianUnavailable(): string | undefined {
  return missingRoot() ?? (exists(DEBIAN) ? undefined : missingPrograms("debootstrap"));
}

/**
 * A test's name and whether it is ignored: `Deno.test(named("…", needs("tmux")), fn)`.
 * The reason a test is ignored shows in its name, so the output says why.
 */
export function named(name: string, skip: string | undefined): { name: string; ignore: boolean } {
  return { name: skip ? `${name} [ignored: ${skip}]` : name, ignore: skip !== undefined };
}

function ensureOpenDir(path: string): void {
  Deno.mkdirSync(path, { recursive: true, mode: 0o755 });
  const mode = Deno.statSync(path).mode ?? 0;
  if ((mode & 0o055) !== 0o055) Deno.chmodSync(path, (mode & 0o7777) | 0o055);
}

/**
 * A new folder `<parent>/<8 hex>`, for an engine's scratch folder whose
 * path has to stay short (sockets under it, or podman's conmon): fails,
 * naming `why`, when it would be longer than `maxLength`.
 */
export function makeShortDir(parent: string, maxLength: number, why: string, mode = 0o755): string {
  Deno.mkdirSync(parent, { recursive: true, mode: 0o755 });
  for (;;) {
    const name = [...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const dir = join(parent, name);
    if (dir.length > maxLength) {
      throw new Error(
        `${dir} is too long for ${why} (over ${maxLength} characters): set GCR_TEST_CACHE to a shorter folder`,
      );
    }
    try {
      Deno.mkdirSync(dir, { mode });
      return dir;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
}

/** Creates FIXTURES and its folders, readable by everyone. */
export function ensureFixtureDirs(): void {
  for (const dir of [FIXTURES, ROOTFS_DIR, SCRATCH]) ensureOpenDir(dir);
}

// ---------------------------------------------------------------------------
// Running processes

export interface RunOptions {
  /** Text written to the process's stdin, which is then closed. Default: /dev/null. */
  stdin?: string;
  /** Leave stdin as a pipe the caller writes to (`Running.stdin`). */
  stdinPipe?: boolean;
  /** Kill the process (SIGKILL, by pid) and fail after this long. Default 30 s. */
  timeoutMs?: number;
  cwd?: string;
  /** Variables added to (or replacing) the test's environment. */
  env?: Record<string, string>;
  /** Variables removed from the environment the process gets. */
  unsetEnv?: string[];
}

export interface RunResult {
  /** Exit status; 128+N when killed by signal N (as a shell reports it). */
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  pid: number;
  /** The command line, for failure messages. */
  command: string;
}

/** A readable summary of a finished process, for assertion contexts. */
export function describe(result: RunResult): string {
  return `$ ${result.command}\nexit: ${result.code}${
    result.signal ? ` (signal ${result.signal})` : ""
  }\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

/** `arg` as one shell word. */
export function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A process started by a test, whose output is collected while it runs. */
export class Running {
  readonly pid: number;
  readonly command: string;
  stdout = "";
  stderr = "";
  #child: Deno.ChildProcess;
  #pumps: Promise<void>[];
  #timeoutMs: number;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #exited = false;

  /** Whether the process has ended. */
  get exited(): boolean {
    return this.#exited;
  }

  constructor(program: string, args: readonly string[], options: RunOptions = {}) {
    this.command = [program, ...args].map(quote).join(" ");
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    let env: Record<string, string> | undefined;
    if (options.env || options.unsetEnv) {
      env = { ...Deno.env.toObject(), ...options.env };
      for (const name of options.unsetEnv ?? []) delete env[name];
    }
    const piped = options.stdin !== undefined || options.stdinPipe;
    this.#child = new Deno.Command(program, {
      args: [...args],
      cwd: options.cwd,
      ...(env ? { env, clearEnv: true } : {}),
      stdin: piped ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    this.#child.status.then(() => (this.#exited = true), () => (this.#exited = true));
    this.#pumps = [
      this.#pump(this.#child.stdout, (text) => (this.stdout += text)),
      this.#pump(this.#child.stderr, (text) => (this.stderr += text)),
    ];
    if (piped) {
      this.#stdin = this.#child.stdin.getWriter();
      if (options.stdin !== undefined) {
        const writer = this.#stdin;
        this.#stdin = undefined;
        this.#pumps.push(
          writer.write(new TextEncoder().encode(options.stdin)).then(() => writer.close()).catch(() => {}),
        );
      }
    }
  }

  async #pump(stream: ReadableStream<Uint8Array>, append: (text: string) => void): Promise<void> {
    const textDecoder = new TextDecoder();
    for await (const chunk of stream) append(textDecoder.decode(chunk, { stream: true }));
    append(textDecoder.decode());
  }

  /** Writes to stdin (only with `stdinPipe`). */
  async write(text: string): Promise<void> {
    if (!this.#stdin) throw new Error("stdin is not a pipe kept open");
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  /** Closes stdin (only with `stdinPipe`). */
  async closeStdin(): Promise<void> {
    const writer = this.#stdin;
    this.#stdin = undefined;
    await writer?.close().catch(() => {});
  }

  /** Waits until stdout matches `pattern`; kills the process and fails on timeout or early exit. */
  waitForStdout(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return this.waitForOutput("stdout", pattern, timeoutMs);
  }

  /** Waits until `stream` (stdout or stderr) matches `pattern`; kills the process and fails on timeout or early exit. */
  async waitForOutput(stream: "stdout" | "stderr", pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = performance.now() + timeoutMs;
    let exited = false;
    this.#child.status.then(() => (exited = true));
    for (;;) {
      const match = this[stream].match(pattern);
      if (match) return match;
      if (exited || performance.now() > deadline) {
        const why = exited ? "the process exited" : `timed out after ${timeoutMs} ms`;
        this.kill("SIGKILL");
        const result = await this.finish().catch(() => undefined);
        throw new Error(
          `${why} before ${stream} matched ${pattern}\n${result ? describe(result) : this.command}`,
        );
      }
      await sleep(20);
    }
  }

  /** Sends `signal` to this process, by its pid; ignores a process already gone. */
  kill(signal: Deno.Signal): void {
    try {
      Deno.kill(this.pid, signal);
    } catch { /* already exited */ }
  }

  /** Waits for the process to end (killing it on timeout, then failing) and returns its result. */
  async finish(): Promise<RunResult> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.kill("SIGKILL");
    }, this.#timeoutMs);
    // After a kill, a descendant may still hold stdout or stderr open: give
    // the output a few seconds more, then fail without waiting for it.
    let giveUp: ReturnType<typeof setTimeout> | undefined;
    const hardDeadline = new Promise<never>((_, reject) => {
      giveUp = setTimeout(
        () => reject(new Error(`no end of output ${this.#timeoutMs + 5000} ms after start: ${this.command}`)),
        this.#timeoutMs + 5000,
      );
    });
    try {
      await this.closeStdin();
      const status = await Promise.race([this.#child.status, hardDeadline]);
      await Promise.race([Promise.all(this.#pumps), hardDeadline]);
      const result: RunResult = {
        code: status.code, // Deno reports 128+N for a process killed by signal N
        signal: status.signal,
        stdout: this.stdout,
        stderr: this.stderr,
        pid: this.pid,
        command: this.command,
      };
      if (timedOut) throw new Error(`timed out after ${this.#timeoutMs} ms and killed\n${describe(result)}`);
      return result;
    } finally {
      clearTimeout(timer);
      clearTimeout(giveUp);
    }
  }
}

/** Runs a program to completion. */
export function run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Running(program, args, options).finish();
}

// ---------------------------------------------------------------------------
// gcr itself

export interface GcrOptions extends RunOptions {
  /**
   * Run gcr as this unprivileged user (setpriv, clean environment), from the
   * world-readable source copy in SRC_DIR.
   */
  user?: string;
  /**
   * Inserted as `--rootfs-dir` right after `run` (or `explain run`). Default
   * ROOTFS_DIR; `false` passes nothing.
   */
  rootfsDir?: string | false;
  /** A deno binary to run gcr with: the gcr script runs the first deno on PATH, so its folder goes first. */
  deno?: string;
}

function withRootfsDir(args: readonly string[], dir: string | false): string[] {
  if (dir === false) return [...args];
  const at = args[0] === "run" ? 1 : args[0] === "explain" && args[1] === "run" ? 2 : -1;
  if (at < 0) return [...args];
  return [...args.slice(0, at), "--rootfs-dir", dir, ...args.slice(at)];
}

/** Starts `gcr <args…>` and returns the running process (for signals and streaming). */
export async function spawnGcr(args: readonly string[], options: GcrOptions = {}): Promise<Running> {
  const full = withRootfsDir(args, options.rootfsDir ?? ROOTFS_DIR);
  if (!options.user) {
    const path: Record<string, string> = options.deno
      ? { PATH: `${dirname(options.deno)}:${Deno.env.get("PATH") ?? ""}` }
      : {};
    return new Running(GCR, full, { cwd: REPO, ...options, env: { GCR_STATE: STATE_DIR, ...path, ...options.env } });
  }
  await syncSource();
  const account = await ensureUser(options.user);
  const denoDir = dirname(options.deno ?? Deno.execPath());
  // setpriv, env and the gcr script all exec: the pid is gcr's own.
  // options.env joins the user's clean environment (env -i): only what the test names.
  const env = options.env ? { env: options.env } : {};
  return new Running("setpriv", asUser(account, ["./gcr", ...full], { path: denoDir, ...env }), {
    ...options,
    cwd: SRC_DIR,
    env: undefined,
    unsetEnv: undefined,
  });
}

/** Runs `gcr <args…>` to completion: `gcr(["run", "-q", "busybox", "true"])`. */
export async function gcr(args: readonly string[], options: GcrOptions = {}): Promise<RunResult> {
  return await (await spawnGcr(args, options)).finish();
}

/** Runs gcr and fails (with its output) unless it exits 0. */
export async function gcrOk(args: readonly string[], options: GcrOptions = {}): Promise<RunResult> {
  const result = await gcr(args, options);
  assertEquals(result.code, 0, "gcr should succeed", describe(result));
  return result;
}

// ---------------------------------------------------------------------------
// Root filesystems

const once = new Map<string, Promise<unknown>>();
/** `make()` once per test run under `key` (the same promise to every caller), made again after a failure. */
export function memo<T>(key: string, make: () => Promise<T>): Promise<T> {
  let promise = once.get(key) as Promise<T> | undefined;
  if (!promise) {
    promise = make();
    once.set(key, promise);
    promise.catch(() => once.delete(key));
  }
  return promise;
}

/**
 * The images folder, after making sure `busybox` is in it: gcr builds it
 * from the host's static busybox on its first run.
 */
export function busyboxRootfs(): Promise<string> {
  return memo("busybox", async () => {
    ensureFixtureDirs();
    if (!exists(BUSYBOX)) {
      const result = await gcr(["run", "-q", "--rootfs-dir", ROOTFS_DIR, "busybox", "/bin/true"], {
        rootfsDir: false,
        timeoutMs: 60_000,
      });
      assertEquals(result.code, 0, `gcr could not build ${BUSYBOX}`, describe(result));
    }
    if (!Deno.statSync(join(BUSYBOX, "bin/busybox")).isFile) throw new Error(`${BUSYBOX} has no bin/busybox`);
    return ROOTFS_DIR;
  });
}

/**
 * The images folder, after making sure `debian` is in it: a minbase bookworm
 * from debootstrap, built in a hidden sibling folder and renamed into place
 * so that an interrupted build never looks finished.
 */
export function debianRootfs(): Promise<string> {
  return memo("debian", async () => {
    ensureFixtureDirs();
    if (!exists(DEBIAN)) {
      const debootstrap = which("debootstrap");
      if (!debootstrap) throw new Error(`${DEBIAN} is missing and debootstrap is not installed`);
      // A build killed midway leaves its hidden folder: remove those over an hour old.
      for (const entry of Deno.readDirSync(ROOTFS_DIR)) {
        const path = join(ROOTFS_DIR, entry.name);
        const age = Date.now() - (Deno.lstatSync(path).mtime?.getTime() ?? Date.now());
        if (entry.name.startsWith(".debian-") && age > 3600_000) Deno.removeSync(path, { recursive: true });
      }
      const temporary = Deno.makeTempDirSync({ dir: ROOTFS_DIR, prefix: ".debian-" });
      try {
        const result = await run(
          debootstrap,
          ["--variant=minbase", "bookworm", temporary, "http://deb.debian.org/debian"],
          { timeoutMs: 15 * 60_000 },
        );
        if (result.code !== 0) {
          throw new Error(`debootstrap failed (exit ${result.code}):\n${(result.stdout + result.stderr).slice(-3000)}`);
        }
        Deno.chmodSync(temporary, 0o755);
        Deno.renameSync(temporary, DEBIAN);
      } catch (error) {
        Deno.removeSync(temporary, { recursive: true });
        throw error;
      }
    }
    if (!exists(join(DEBIAN, "usr/bin/apt-get"))) throw new Error(`${DEBIAN} has no usr/bin/apt-get`);
    return ROOTFS_DIR;
  });
}

/**
 * A scratch copy (`cp -a`) of an image in SCRATCH, for tests that break it on
 * purpose. Call `remove` in a finally block.
 */
export async function copyRootfs(image: string): Promise<{ path: string; remove: () => void }> {
  ensureFixtureDirs();
  const dir = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "rootfs-" });
  const path = join(dir, "rootfs");
  const result = await run("cp", ["-a", image, path], { timeoutMs: 120_000 });
  if (result.code !== 0) {
    Deno.removeSync(dir, { recursive: true });
    throw new Error(`cp -a ${image} failed:\n${result.stderr}`);
  }
  return { path, remove: () => Deno.removeSync(dir, { recursive: true }) };
}

/**
 * A listing of every entry under `root`: path, type, size, mode and symlink
 * target, sorted. Two listings are equal when nothing was added, removed or
 * changed in kind, size or permissions.
 */
export function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = join(dir, entry.name);
      const relPath = `${rel}/${entry.name}`;
      const info = Deno.lstatSync(path);
      const type = info.isSymlink ? "l" : info.isDirectory ? "d" : info.isFile ? "f" : "o";
      const mode = ((info.mode ?? 0) & 0o7777).toString(8);
      const size = info.isDirectory ? "-" : String(info.size);
      const target = info.isSymlink ? ` -> ${Deno.readLinkSync(path)}` : "";
      out.push(`${relPath} ${type} ${mode} ${size}${target}`);
      if (info.isDirectory) walk(path, relPath);
    }
  };
  walk(root, "");
  return out.sort();
}

// ---------------------------------------------------------------------------
// The rootless users and the source copy they run

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function passwdEntry(name: string): Account | undefined {
  for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
    const [user, , uid, gid, , home] = line.split(":");
    if (user === name) return { name, uid: Number(uid), gid: Number(gid), home: home || "/" };
  }
  return undefined;
}

/** The `start:count` range of `account` in an /etc/subuid-style file (by name or uid). */
export function subRange(file: string, account: Account): { start: number; count: number } | undefined {
  return subordinateRange(readTextOr(file), account.name, account.uid);
}

function writeLines(file: string, keep: (owner: string) => boolean, add?: string): void {
  const text = readTextOr(file);
  const kept = text.split("\n").filter((line) => line.trim() && keep(line.split(":")[0]!));
  if (add) kept.push(add);
  const next = kept.length ? kept.join("\n") + "\n" : "";
  if (next !== text) Deno.writeTextFileSync(file, next, { mode: 0o644 });
}

/** The first id after every range in the file, at least 100000. */
function freeStart(file: string): number {
  let end = 100_000;
  for (const line of readTextOr(file).split("\n")) {
    const [, start, count] = line.trim().split(":");
    if (start && count) end = Math.max(end, Number(start) + Number(count));
  }
  return end;
}

/**
 * Makes sure a test user exists (`useradd -m`): `gcrtest` with subordinate
 * uid and gid ranges, `gcrsolo` without any (its lines are removed, since
 * useradd may have added some).
 */
export function ensureUser(name: string): Promise<Account> {
  return memo(`user:${name}`, async () => {
    if (name !== RANGED_USER && name !== SOLO_USER) throw new Error(`not a test user: ${name}`);
    if (!passwdEntry(name)) {
      const result = await run("useradd", ["-m", "-s", "/bin/sh", name]);
      if (result.code !== 0 && !passwdEntry(name)) throw new Error(`useradd ${name} failed:\n${result.stderr}`);
    }
    const account = passwdEntry(name)!;
    const owns = (owner: string) => owner === account.name || owner === String(account.uid);
    for (const file of ["/etc/subuid", "/etc/subgid"]) {
      if (name === SOLO_USER) writeLines(file, (owner) => !owns(owner));
      else if (!subRange(file, account)) writeLines(file, () => true, `${name}:${freeStart(file)}:65536`);
    }
    return account;
  });
}

/**
 * `setpriv`'s arguments to run `command` as a test account, with nothing of
 * root's environment: the account's HOME (or `home`), USER and LOGNAME, a
 * PATH of `path` then the system's folders, and `env`. setpriv and env both
 * exec, so the process started is the command's own.
 */
export function asUser(
  account: Account,
  command: readonly string[],
  options: { path?: string; home?: string; env?: Record<string, string> } = {},
): string[] {
  return [
    `--reuid=${account.uid}`,
    `--regid=${account.gid}`,
    "--init-groups",
    "env",
    "-i",
    `HOME=${options.home ?? account.home}`,
    `USER=${account.name}`,
    `LOGNAME=${account.name}`,
    `PATH=${options.path ? `${options.path}:` : ""}/usr/local/bin:/usr/bin:/bin`,
    ...Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`),
    ...command,
  ];
}

/** Top-level folders of the repository that are not gcr's source. */
const NOT_SOURCE = ["tests", "rootfs", "bench", "node_modules"];

/**
 * Copies gcr's source (the *.ts files, steps/, ffi/ and other source
 * folders, the gcr script, deno.json) to SRC_DIR, world-readable; once per
 * test run.
 */
export function syncSource(): Promise<string> {
  return memo("src", async () => {
    ensureFixtureDirs();
    const staging = Deno.makeTempDirSync({ dir: FIXTURES, prefix: ".src-" });
    try {
      // steps/ and ffi/ today; any other source folder main.ts may come to import, too.
      const names = [...Deno.readDirSync(REPO)]
        .filter((e) =>
          (e.isFile && (e.name.endsWith(".ts") || ["gcr", "deno.json", "deno.lock"].includes(e.name))) ||
          (e.isDirectory && !e.name.startsWith(".") && !NOT_SOURCE.includes(e.name))
        )
        .map((e) => join(REPO, e.name));
      const copy = await run("cp", ["-r", ...names, staging]);
      if (copy.code !== 0) throw new Error(`copying the source failed:\n${copy.stderr}`);
      const chmod = await run("chmod", ["-R", "a+rX", staging]);
      if (chmod.code !== 0) throw new Error(`chmod failed:\n${chmod.stderr}`);
      Deno.chmodSync(staging, 0o755);
      try {
        Deno.removeSync(SRC_DIR, { recursive: true });
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      Deno.renameSync(staging, SRC_DIR);
    } catch (error) {
      Deno.removeSync(staging, { recursive: true });
      throw error;
    }
    return SRC_DIR;
  });
}

// ---------------------------------------------------------------------------
// Processes, seen from the host

/** The host's namespace links of this (the test's) process. */
export function hostNamespaces(): Record<string, string> {
  const names = ["user", "pid", "mnt", "uts", "ipc", "cgroup", "net"];
  return Object.fromEntries(names.map((ns) => [ns, Deno.readLinkSync(`/proc/self/ns/${ns}`)]));
}

/** Direct children of `pid` (all its threads), from /proc. */
export function childrenOf(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = readTextOr(`/proc/${pid}/task/${task.name}/children`);
      found.push(...text.split(/\s+/).filter(Boolean).map(Number));
    }
  } catch { /* gone */ }
  return found;
}

/** The one-letter state of `pid` (R, S, Z, …), or undefined when there is no such process. */
export function processState(pid: number): string | undefined {
  const stat = readTextOr(`/proc/${pid}/stat`);
  return stat ? stat.replace(/^.*\) /s, "")[0] : undefined;
}

/**
 * Whether `pid` is no longer running: gone, or dead and waiting to be reaped
 * (a zombie): once gcr is dead, its container is reparented to the host's
 * init, which may reap late.
 */
export function isDead(pid: number): boolean {
  const state = processState(pid);
  return state === undefined || state === "Z" || state === "X";
}

/** A process's arguments, each followed by a space ("" once it is gone). */
export function commandLine(pid: number): string {
  return readTextOr(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
}

/** Live (non-zombie) processes whose command line contains `marker`. */
export function liveProcessesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === Deno.pid) continue;
    if (commandLine(pid).includes(marker) && !isDead(pid)) found.push(pid);
  }
  return found;
}

/** Live (non-zombie) processes in the PID namespace `nsLink` (e.g. `pid:[4026532181]`). */
export function liveProcessesInPidNamespace(nsLink: string): number[] {
  return liveProcessesInNamespace("pid", nsLink);
}

/** Live (non-zombie) processes in the namespace `nsLink` of kind `kind` (e.g. `user`, `user:[4026532181]`). */
export function liveProcessesInNamespace(kind: string, nsLink: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${entry.name}/ns/${kind}`) === nsLink && !isDead(Number(entry.name))) {
        found.push(Number(entry.name));
      }
    } catch { /* gone, or not ours to read */ }
  }
  return found;
}

/** Sends SIGKILL to each of `pids`, by pid; ignores those already gone. */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* already gone */ }
  }
}

/** Polls `what` (processes, mounts…) until it finds none or `timeoutMs` passed; returns what is left. */
export async function waitGone<T>(what: () => T[], timeoutMs: number): Promise<T[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = what();
    if (!left.length || performance.now() > deadline) return left;
    await sleep(50);
  }
}

/** The mount points at or under `dir` in the mount namespace of `pid` (default: the test's). */
export function mountsUnder(dir: string, pid: number | "self" = "self"): string[] {
  const mounts = parseMountinfo(readTextOr(`/proc/${pid}/mountinfo`));
  return mounts.map((m) => m.mountPoint).filter((p) => p === dir || p.startsWith(dir + "/"));
}

/**
 * What is at each of `paths` (kind and modification time, and the same for
 * what they hold, three levels deep), one line each: two equal results mean
 * nothing there was made, removed or written.
 */
export function pathsState(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const path of paths) {
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch {
      out.push(`${path} absent`);
      continue;
    }
    out.push(`${path} ${info.isDirectory ? "d" : "f"} ${info.mtime?.toISOString()}`);
    if (!info.isDirectory) continue;
    const walk = (folder: string, depth: number) => {
      for (const entry of Deno.readDirSync(folder)) {
        const child = join(folder, entry.name);
        const stat = Deno.lstatSync(child);
        out.push(`${child} ${stat.isDirectory ? "d" : "f"} ${stat.mtime?.toISOString()}`);
        if (stat.isDirectory && depth < 3) walk(child, depth + 1);
      }
    };
    try {
      walk(path, 1);
    } catch { /* unreadable */ }
  }
  return out;
}

/** Fields of each line of a mountinfo file. */
export interface MountInfo {
  id: string;
  device: string;
  root: string;
  mountPoint: string;
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** Parses /proc/<pid>/mountinfo text. */
export function parseMountinfo(text: string): MountInfo[] {
  return text.split("\n").filter(Boolean).map((line) => {
    const [left = "", right = ""] = line.split(" - ");
    const f = left.split(" ");
    const [fsType = "", source = "", superOptions = ""] = right.split(" ");
    return {
      id: f[0] ?? "",
      device: f[2] ?? "",
      root: f[3] ?? "",
      mountPoint: (f[4] ?? "").replace(/\\040/g, " "),
      options: (f[5] ?? "").split(","),
      fsType,
      source,
      superOptions: superOptions.split(","),
    };
  });
}

/** Decodes bytes as UTF-8. */
export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
