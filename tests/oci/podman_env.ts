/**
 * A podman of the tests' own, for driving an OCI runtime (gcr, or runc as
 * the reference) the way podman does: `podman --runtime <path> run …`.
 *
 * Everything podman keeps lives in one scratch folder
 * (`$GCR_TEST_CACHE/pm/<8 hex>`, kept short: see makeEnvDir): storage root and runroot, libpod's tmp
 * folder (file locks, exit files), events log, CNI config folder, and the
 * containers.conf / storage.conf / registries.conf / policy.json it reads
 * (through CONTAINERS_CONF and friends, so /etc/containers and
 * ~/.config/containers are never read for settings nor written).
 *
 * The image is a busybox image built by independent tools: the host's
 * static busybox and its applet links, layered by umoci into an OCI layout,
 * archived with tar (an oci-archive) and kept in `$GCR_TEST_CACHE/podman/`;
 * each environment `podman load`s it (about a second).
 *
 * What podman would otherwise touch outside the folder, and what is done
 * about it:
 *
 *  - `podman load` (any image copy) writes the blob-info cache under
 *    /var/lib/containers/cache when run as root, with no option to move it:
 *    the load runs in a private mount namespace where that path (or its
 *    deepest existing parent) is bind-mounted read-only, so podman falls back
 *    to an in-memory cache.
 *  - The netavark backend creates /run/containers/networks on every command:
 *    the CNI backend is configured instead, with its config folder in the
 *    scratch folder, and containers default to `--network none` (a real
 *    network would add a host bridge, firewall rules and /var/lib/cni).
 *  - shm locks (/dev/shm/libpod_lock, shared with the host's podman): file
 *    locks in the scratch folder instead.
 *  - With the cgroupfs manager podman makes `libpod_parent/conmon` in every
 *    v1 hierarchy: cleanup removes them when they are empty and were not
 *    there before.
 *
 * Machine facts (docs/design.md §4): podman needs `default_ulimits` (raising
 * rlimits fails without CAP_SYS_RESOURCE) and the cgroupfs manager.
 *
 * Rootless (`user`: a test user with subordinate ranges): every podman
 * command runs as that user (setpriv, a clean environment), as a user would
 * run it, and podman keeps a user namespace of its own, held by its pause
 * process. The folder is the user's; `$XDG_RUNTIME_DIR`, `$XDG_DATA_HOME`,
 * `$XDG_CONFIG_HOME` and `$XDG_CACHE_HOME` point into it, since rootless
 * podman ignores storage.conf's graphroot and runroot (rootless_storage_path
 * instead, and the runtime folder) and keeps its blob-info cache under
 * `$XDG_DATA_HOME`: the user's home is never written. Storage is vfs (no
 * rootless overlay needed). Cleanup stops the pause process by the pid in
 * its pid file, and every process left in its user namespace.
 *
 * @module
 */
import { join } from "node:path";
import {
  type Account,
  asUser,
  commandLine,
  describe,
  ensureFixtureDirs,
  ensureUser,
  FIXTURES,
  isDead,
  killAll,
  liveProcessesInNamespace,
  liveProcessesWith,
  makeShortDir,
  memo,
  missingPrograms,
  missingRoot,
  mountsUnder,
  pathsState,
  quote,
  rootlessUnavailable,
  run,
  Running,
  type RunOptions,
  type RunResult,
  syncSource,
  waitGone,
  which,
} from "../fixtures.ts";
import { exists, readTextOr } from "../../host/files.ts";

/** Where the built image archive is kept between runs. */
export const PODMAN_CACHE = join(FIXTURES, "podman");
/** The image's name once loaded (umoci's tag `gcr-busybox` becomes `localhost/gcr-busybox:latest`). */
export const PODMAN_IMAGE = "localhost/gcr-busybox:latest";
const IMAGE_TAG = "gcr-busybox";
/** Bump when the recipe changes: a new name makes a new archive. */
const ARCHIVE = join(PODMAN_CACHE, "gcr-busybox-oci-v1.tar");
const BUSYBOX_PATHS = ["/bin/busybox", "/usr/bin/busybox"];
/** The environments' folders. */
const ENVS = join(FIXTURES, "pm");
const MAX_DIR_LENGTH = 42;
const USER_DIR_LENGTH = MAX_DIR_LENGTH - 6;
/** The XDG folders of a rootless environment, under its folder. */
const USER_DIRS = { XDG_RUNTIME_DIR: "rt", XDG_DATA_HOME: "data", XDG_CONFIG_HOME: "config", XDG_CACHE_HOME: "cache" };

/** The paths outside the scratch folder podman could create or write to, checked by tests. */
const HOST_PATHS = [
  "/etc/containers",
  "/usr/share/containers",
  "/var/lib/containers",
  "/run/containers",
  "/run/libpod",
  "/var/lib/cni",
  "/dev/shm/libpod_lock",
  `${Deno.env.get("HOME") ?? "/root"}/.config/containers`,
  `${Deno.env.get("HOME") ?? "/root"}/.local/share/containers`,
];

/** Why the podman tests cannot run here, or undefined. */
export function podmanUnavailable(): string | undefined {
  return missingRoot() ?? missingPrograms("podman", "conmon", "script") ?? busyboxImageUnavailable();
}

/** Why the busybox image (podmanImageArchive) cannot be built here, or undefined. */
export function busyboxImageUnavailable(): string | undefined {
  return missingPrograms("umoci", "unshare", "tar") ??
    (BUSYBOX_PATHS.some(exists) ? undefined : "no busybox (apt-get install busybox-static)");
}

/** Why the rootless podman tests cannot run here (podman's, the test users', the id helpers), or undefined. */
export function rootlessPodmanUnavailable(): string | undefined {
  return podmanUnavailable() ?? rootlessUnavailable() ?? missingPrograms("newuidmap", "newgidmap", "chown");
}

// ---------------------------------------------------------------------------
// The image

/** Runs a program to completion and fails, with its output, unless it exits 0. */
export async function must(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await run(program, args, { timeoutMs: 120_000, ...options });
  if (result.code !== 0) throw new Error(`${program} failed\n${describe(result)}`);
  return result;
}

/**
 * The busybox image as an oci-archive, built once (umoci + tar) and kept in
 * PODMAN_CACHE. Built in a hidden folder and renamed into place.
 */
export function podmanImageArchive(): Promise<string> {
  return memo("podman-image", buildArchive);
}

async function buildArchive(): Promise<string> {
  if (exists(ARCHIVE)) return ARCHIVE;
  ensureFixtureDirs();
  Deno.mkdirSync(PODMAN_CACHE, { recursive: true, mode: 0o755 });
  for (const entry of Deno.readDirSync(PODMAN_CACHE)) {
    const path = join(PODMAN_CACHE, entry.name);
    const age = Date.now() - (Deno.lstatSync(path).mtime?.getTime() ?? Date.now());
    if (entry.name.startsWith(".build-") && age > 3600_000) Deno.removeSync(path, { recursive: true });
  }
  const busybox = BUSYBOX_PATHS.find(exists);
  if (!busybox) throw new Error("no busybox to build the podman test image from (apt-get install busybox-static)");
  const work = Deno.makeTempDirSync({ dir: PODMAN_CACHE, prefix: ".build-" });
  try {
    const rootfs = join(work, "rootfs");
    for (const dir of ["bin", "etc", "root", "tmp", "proc", "sys", "dev", "var/tmp"]) {
      Deno.mkdirSync(join(rootfs, dir), { recursive: true, mode: 0o755 });
    }
    Deno.chmodSync(join(rootfs, "tmp"), 0o1777);
    Deno.chmodSync(join(rootfs, "var/tmp"), 0o1777);
    Deno.chmodSync(join(rootfs, "root"), 0o700);
    Deno.copyFileSync(busybox, join(rootfs, "bin/busybox"));
    Deno.chmodSync(join(rootfs, "bin/busybox"), 0o755);
    const applets = (await must(busybox, ["--list"])).stdout.split("\n").map((s) => s.trim());
    for (const applet of applets) {
      if (/^[\w.[-]+$/.test(applet) && applet !== "busybox") Deno.symlinkSync("busybox", join(rootfs, "bin", applet));
    }
    Deno.writeTextFileSync(
      join(rootfs, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    Deno.writeTextFileSync(join(rootfs, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    const layout = join(work, "layout");
    const image = `${layout}:${IMAGE_TAG}`;
    await must("umoci", ["init", "--layout", layout]);
    await must("umoci", ["new", "--image", image]);
    await must("umoci", ["insert", "--image", image, rootfs, "/"]);
    await must("umoci", [
      "config",
      "--image",
      image,
      "--config.env",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "--config.cmd",
      "sh",
    ]);
    const archive = join(work, "archive.tar");
    await must("tar", ["-C", layout, "-cf", archive, "."]);
    Deno.chmodSync(archive, 0o644);
    Deno.renameSync(archive, ARCHIVE);
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
  return ARCHIVE;
}

/**
 * Runs `argv` (podman, skopeo: any user of containers/image) where the
 * blob-info cache's folder is read-only, in a private mount namespace, so
 * that it keeps that cache in memory instead of writing
 * /var/lib/containers/cache, which root's copies do with no option to move it.
 */
export function runWithoutBlobCache(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const readOnly = ["/var/lib/containers/cache", "/var/lib/containers", "/var/lib"].find(exists) ?? "/var/lib";
  const script = 'target=$1; shift; mount --bind -o ro "$target" "$target" && exec "$@"';
  return run("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, "sh", readOnly, ...argv], options);
}

// ---------------------------------------------------------------------------
// The environment

export interface PodmanOptions extends RunOptions {
  /** The OCI runtime for this command (`--runtime`); default: the environment's. */
  runtime?: string;
}

export interface PodmanEnvOptions {
  /** The OCI runtime passed as `--runtime` to every command; default: runc from $PATH. */
  runtime?: string;
  /**
   * Rootless: every podman command runs as this test user (RANGED_USER),
   * whose folder the environment is (see the module notes).
   */
  user?: string;
  /** Extra lines for containers.conf's [engine] table, e.g. `runtime_supports_json = ["gcr"]`. */
  engine?: string[];
}

export interface PodmanEnv {
  /** The scratch folder holding everything. */
  readonly dir: string;
  /** The user podman runs as (rootless), or undefined for root. */
  readonly account: Account | undefined;
  /** The loaded busybox image (PODMAN_IMAGE). */
  readonly image: string;
  /** The default OCI runtime (`--runtime`). */
  readonly runtime: string;
  /** Environment variables every podman command gets (CONTAINERS_CONF and friends). */
  readonly env: Record<string, string>;
  /** `podman --runtime <runtime> <args…>` run to completion (default timeout 60 s). */
  podman(args: readonly string[], options?: PodmanOptions): Promise<RunResult>;
  /** Starts `podman … <args…>` and returns the running process. */
  spawn(args: readonly string[], options?: PodmanOptions): Running;
  /** The argv of `podman … <args…>` (program first), for other launchers. */
  argv(args: readonly string[], runtime?: string): string[];
  /**
   * `podman … <args…>` under a pseudo-terminal (`script -qec`), for `-it`:
   * the exit status is podman's; stdout is the terminal's output (CRLF line ends).
   */
  tty(args: readonly string[], options?: PodmanOptions): Promise<RunResult>;
  /** Removes every container, process, mount, cgroup and file the environment made. Idempotent. */
  cleanup(): Promise<void>;
}

const CGROUP_ROOT = "/sys/fs/cgroup";

function cgroupHierarchies(): string[] {
  try {
    return [...Deno.readDirSync(CGROUP_ROOT)].filter((e) => e.isDirectory).map((e) => join(CGROUP_ROOT, e.name));
  } catch {
    return [];
  }
}

function libpodParents(): string[] {
  return cgroupHierarchies().map((h) => join(h, "libpod_parent")).filter(exists);
}

function containersConf(dir: string, engine: readonly string[]): string {
  return `# Written by tests/oci/podman_env.ts: a podman confined to ${dir}.
[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
# Debian's /usr/share/containers/containers.conf, which is not read when CONTAINERS_CONF is set.
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
default_sysctls = ["net.ipv4.ping_group_range=0 0"]

[network]
network_backend = "cni"
network_config_dir = "${dir}/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/events.log"
tmp_dir = "${dir}/libpod"
lock_type = "file"
volume_path = "${dir}/root/volumes"
static_dir = "${dir}/root/libpod"
image_copy_tmp_dir = "${dir}/tmp"
${engine.join("\n")}
`;
}

/** Creates a podman environment with the busybox image loaded. Call `cleanup` in a finally block. */
export async function podmanEnv(options: PodmanEnvOptions = {}): Promise<PodmanEnv> {
  const runtime = options.runtime ?? which("runc");
  if (!runtime) throw new Error("no runtime given and runc is not installed");
  const archive = await podmanImageArchive();
  ensureFixtureDirs();
  const account = options.user ? await ensureUser(options.user) : undefined;
  // The runtime a test user runs must be readable by it: gcr from the source copy.
  if (account) await syncSource();
  const dir = makeEnvDir(account ? USER_DIR_LENGTH : MAX_DIR_LENGTH);
  reapStaleEnvs();
  const subs = ["root", "runroot", "libpod", "tmp", "networks", ...(account ? Object.values(USER_DIRS) : [])];
  for (const sub of subs) Deno.mkdirSync(join(dir, sub), { mode: 0o700 });
  Deno.writeTextFileSync(join(dir, "containers.conf"), containersConf(dir, options.engine ?? []));
  Deno.writeTextFileSync(
    join(dir, "storage.conf"),
    account
      ? `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/runroot"\n` +
        `rootless_storage_path = "${dir}/root"\n`
      : `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/runroot"\n`,
  );
  Deno.writeTextFileSync(
    join(dir, "registries.conf"),
    `unqualified-search-registries = []\nshort-name-mode = "disabled"\n`,
  );
  Deno.writeTextFileSync(join(dir, "policy.json"), `{"default": [{"type": "insecureAcceptAnything"}]}\n`);
  if (account) {
    // Who it belongs to, for a later run's reapStaleEnvs; then all of it is the user's.
    Deno.writeTextFileSync(join(dir, "user"), account.name);
    const owned = await run("chown", ["-R", `${account.uid}:${account.gid}`, dir]);
    if (owned.code !== 0) throw new Error(`chown of ${dir} failed\n${describe(owned)}`);
  }
  const env = envFor(dir, account !== undefined);
  const parentsBefore = new Set(libpodParents());
  const podmanEnv = new Env(dir, runtime, env, parentsBefore, account);
  try {
    await podmanEnv.load(archive);
  } catch (error) {
    await podmanEnv.cleanup().catch(() => {});
    throw error;
  }
  return podmanEnv;
}

/**
 * A new folder `$GCR_TEST_CACHE/pm/<8 hex>`. Its path must stay short: from
 * 43 characters on (storage root and runroot under it), every `podman run`
 * waits 20 s (conmon's timeout) for an exit code it already has (podman
 * 4.3.1, conmon 2.1.6), while 42 characters work. Rootless, the runroot is
 * `<runtime folder>/containers`, 6 characters longer than `runroot`.
 */
function makeEnvDir(maxLength: number): string {
  return makeShortDir(ENVS, maxLength, "podman");
}

function envFor(dir: string, rootless: boolean): Record<string, string> {
  return {
    CONTAINERS_CONF: join(dir, "containers.conf"),
    CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    TMPDIR: join(dir, "tmp"),
    ...(rootless ? Object.fromEntries(Object.entries(USER_DIRS).map(([name, sub]) => [name, join(dir, sub)])) : {}),
  };
}

class Env implements PodmanEnv {
  readonly image = PODMAN_IMAGE;
  #cleaned = false;

  constructor(
    readonly dir: string,
    readonly runtime: string,
    readonly env: Record<string, string>,
    readonly parentsBefore: Set<string>,
    readonly account: Account | undefined,
  ) {}

  argv(args: readonly string[], runtime = this.runtime, env: Record<string, string> = {}): string[] {
    return podmanArgv(this.dir, runtime, args, this.account, env);
  }

  /** A rootless command's environment goes through setpriv's `env -i` (in argv), root's through Running's. */
  #options(options: PodmanOptions): RunOptions {
    const { runtime: _runtime, ...rest } = options;
    if (this.account) return { timeoutMs: 60_000, ...rest, env: undefined };
    return { timeoutMs: 60_000, ...rest, env: { ...this.env, ...options.env } };
  }

  podman(args: readonly string[], options: PodmanOptions = {}): Promise<RunResult> {
    const [program, ...rest] = this.argv(args, options.runtime, options.env);
    return run(program!, rest, this.#options(options));
  }

  spawn(args: readonly string[], options: PodmanOptions = {}): Running {
    const [program, ...rest] = this.argv(args, options.runtime, options.env);
    return new Running(program!, rest, this.#options(options));
  }

  tty(args: readonly string[], options: PodmanOptions = {}): Promise<RunResult> {
    const line = this.argv(args, options.runtime, options.env).map(quote).join(" ");
    return run("script", ["-qec", line, "/dev/null"], this.#options(options));
  }

  /**
   * Loads the image archive. In a private mount namespace the blob-info
   * cache's folder is read-only, so podman keeps that cache in memory instead
   * of writing /var/lib/containers/cache (see the module notes).
   */
  async load(archive: string): Promise<void> {
    if (this.account) {
      // Rootless podman keeps that cache under $XDG_DATA_HOME, in the folder.
      const loaded = await this.podman([
        "load",
        "--signature-policy",
        join(this.dir, "policy.json"),
        "--input",
        archive,
      ], {
        timeoutMs: 120_000,
      });
      if (loaded.code !== 0) throw new Error(`podman load failed\n${describe(loaded)}`);
      return await this.#checkImage(loaded);
    }
    const result = await runWithoutBlobCache(
      this.argv(["load", "--signature-policy", join(this.dir, "policy.json"), "--input", archive]),
      this.#options({ timeoutMs: 120_000 }),
    );
    if (result.code !== 0) throw new Error(`podman load failed\n${describe(result)}`);
    await this.#checkImage(result);
  }

  async #checkImage(load: RunResult): Promise<void> {
    const check = await this.podman(["image", "exists", this.image]);
    if (check.code !== 0) throw new Error(`${this.image} is missing after podman load\n${describe(load)}`);
  }

  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    await cleanupDir(this.dir, this.runtime, this.parentsBefore, this.account);
    this.#cleaned = true;
  }
}

/**
 * `podman --runtime <runtime> <args…>`: as root with the environment the
 * caller passes, or as `account` through setpriv with the folder's
 * variables (and `env`) in the command line.
 */
function podmanArgv(
  dir: string,
  runtime: string,
  args: readonly string[],
  account: Account | undefined,
  env: Record<string, string> = {},
): string[] {
  const podman = ["podman", "--runtime", runtime, ...args];
  if (!account) return podman;
  return ["setpriv", ...asUser(account, podman, { path: "/usr/sbin:/sbin", env: { ...envFor(dir, true), ...env } })];
}

/** Live processes in any of the container cgroups (libpod-<id>) of `ids`. */
function containerProcesses(ids: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const parent of libpodParents()) {
    for (const id of ids) {
      try {
        const text = Deno.readTextFileSync(join(parent, `libpod-${id}`, "cgroup.procs"));
        for (const pid of text.split("\n").filter(Boolean)) pids.add(Number(pid));
      } catch { /* no such cgroup here */ }
    }
  }
  return [...pids];
}

/**
 * Tears down the environment in `dir`: its containers (through podman and
 * `runtime`), then whatever is left by pid and mount point, then the folder
 * and the libpod_parent cgroups that were not there before. Fails, after
 * doing all it can, when a process or a mount survived.
 */
async function cleanupDir(
  dir: string,
  runtime: string,
  parentsBefore: Set<string>,
  account?: Account,
): Promise<void> {
  const env = envFor(dir, account !== undefined);
  const podman = (args: string[]) => {
    const [program, ...rest] = podmanArgv(dir, runtime, args, account);
    return run(program!, rest, { ...(account ? {} : { env }), timeoutMs: 60_000 }).catch(() => undefined);
  };
  const problems: string[] = [];
  // The containers' ids, for finding their processes and cgroups should podman fail.
  let ids: string[] = [];
  for (const driver of ["overlay", "vfs"]) {
    try {
      const containers = JSON.parse(Deno.readTextFileSync(join(dir, `root/${driver}-containers/containers.json`)));
      ids.push(...(containers as { id: string }[]).map((c) => c.id));
    } catch { /* no containers were made */ }
  }
  ids = [...new Set(ids)];
  // conmon runs podman's exit command (`podman container cleanup`) when a
  // container ends, and it may still be running as `podman run --rm`
  // returns, by design. Awaited first, so that rm and rmi below are the only
  // podman on the storage: the last one out unmounts it.
  const exitCommands = () => liveProcessesWith(dir).filter((pid) => commandLine(pid).includes(" container cleanup "));
  await waitGone(exitCommands, 10_000);
  if (exists(join(dir, "root"))) {
    await podman(["rm", "--all", "--force", "--time", "0"]);
    await podman(["rmi", "--all", "--force"]);
  }
  // Rootless: the pause process holding podman's user namespace stays by
  // design; what else is in that namespace (conmon, containers) should not.
  const pause = account ? pauseProcess(dir) : undefined;
  const inNamespace = () => pause ? liveProcessesInNamespace("user", pause.userNamespace) : [];
  // Whatever survived: conmon (its command line names the folder) and the containers' processes.
  const leftovers = () =>
    [...new Set([...liveProcessesWith(dir), ...containerProcesses(ids), ...inNamespace()])].filter((pid) =>
      pid !== pause?.pid
    );
  // conmon exits after its exit command: left is what is alive after a moment.
  const survivors = await waitGone(leftovers, 3000);
  if (survivors.length) {
    problems.push(
      `processes left after podman rm: ${
        survivors.map((pid) => `${pid} (${commandLine(pid).trim() || "gone"})`).join(", ")
      }`,
    );
    killAll(survivors);
    const stuck = await waitGone(leftovers, 5000);
    if (stuck.length) problems.push(`processes that would not die: ${stuck.join(" ")}`);
  }
  if (pause) {
    killAll([pause.pid]);
    const stuck = await waitGone(() => [pause.pid].filter((pid) => !isDead(pid)), 5000);
    if (stuck.length) problems.push(`the pause process ${pause.pid} would not die`);
  }
  const mounted = mountsUnder(dir).sort((a, b) => b.length - a.length);
  if (mounted.length) problems.push(`mounts left after podman rm: ${mounted.join(" ")}`);
  for (const mountPoint of mounted) {
    const result = await run("umount", [mountPoint]);
    if (result.code !== 0) await run("umount", ["--lazy", mountPoint]);
  }
  for (const parent of libpodParents()) {
    for (const id of ids) {
      try {
        Deno.removeSync(join(parent, `libpod-${id}`));
      } catch { /* gone, or never made in this hierarchy */ }
    }
    if (parentsBefore.has(parent)) continue;
    for (const path of [join(parent, "conmon"), parent]) {
      try {
        Deno.removeSync(path); // rmdir: only when empty, as another podman may be using it
      } catch { /* in use or gone */ }
    }
  }
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) problems.push(`cannot remove ${dir}: ${error}`);
  }
  if (mountsUnder(dir).length) problems.push(`mounts still under ${dir}: ${mountsUnder(dir).join(" ")}`);
  if (problems.length) throw new Error(`podman environment cleanup:\n${problems.join("\n")}`);
}

/** Environments of earlier, interrupted runs (over an hour old) are torn down with runc, as their user. */
function reapStaleEnvs(): void {
  const runc = which("runc");
  for (const entry of Deno.readDirSync(ENVS)) {
    const path = join(ENVS, entry.name);
    const age = Date.now() - (Deno.lstatSync(path).mtime?.getTime() ?? Date.now());
    if (age <= 3600_000 || !runc) continue;
    const user = readTextOr(join(path, "user")).trim();
    (user ? ensureUser(user) : Promise.resolve(undefined))
      .then((account) => cleanupDir(path, runc, new Set(libpodParents()), account))
      .catch(() => {});
  }
}

/**
 * Rootless podman's pause process (its pid file is in libpod's tmp folder,
 * or under the runtime folder without one) and the user namespace it holds.
 */
function pauseProcess(dir: string): { pid: number; userNamespace: string } | undefined {
  for (const file of [join(dir, "libpod/pause.pid"), join(dir, USER_DIRS.XDG_RUNTIME_DIR, "libpod/tmp/pause.pid")]) {
    const pid = Number(readTextOr(file).trim());
    if (!(pid > 0)) continue;
    try {
      return { pid, userNamespace: Deno.readLinkSync(`/proc/${pid}/ns/user`) };
    } catch { /* gone already */ }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// The host, as podman could change it

/**
 * A description of the host state podman could touch outside an
 * environment's folder: the paths in HOST_PATHS (each entry with its kind
 * and modification time), the libpod_parent cgroups, the network links, and
 * the firewall's CNI and netavark rules. Two equal snapshots mean podman left the host alone.
 */
export async function hostContainerState(): Promise<string[]> {
  const out = pathsState(HOST_PATHS);
  for (const parent of libpodParents()) out.push(`cgroup ${parent}`);
  for (const entry of Deno.readDirSync("/sys/class/net")) out.push(`link ${entry.name}`);
  const iptables = which("iptables-save");
  if (iptables) {
    const rules = await run(iptables, []);
    out.push(...rules.stdout.split("\n").filter((line) => /cni|netavark/i.test(line)).map((l) => `iptables ${l}`));
  }
  return out.sort();
}
