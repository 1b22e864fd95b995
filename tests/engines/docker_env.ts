/**
 * A Docker of the tests' own (Debian's docker.io: dockerd 20.10 and the
 * /usr/bin/docker client), for driving an OCI runtime the way Docker does:
 * dockerd → its containerd → containerd-shim-runc-v2 → `<runtime> create …`.
 * One dockerd knows both runtimes: runc, its default (the control), and gcr
 * (`--add-runtime gcr=./gcr`), chosen per container with `--runtime`.
 *
 * Everything dockerd keeps lives in one scratch folder
 * (`$GCR_TEST_CACHE/dk/<8 hex>`, short: see MAX_DIR_LENGTH): its
 * daemon.json (`--config-file`, so /etc/docker/daemon.json is not read; the
 * trust key it would write to /etc/docker/key.json goes to the folder
 * through `deprecated-key-path`), `--data-root` (images, containers, and its
 * containerd's root), `--exec-root` (its containerd's state and socket,
 * libnetwork's sockets, the network namespaces' bind mounts, and each
 * runtime's `--root`, `<exec-root>/runtime-runc` for gcr too), the API
 * socket, the pid file, and the client's config (DOCKER_CONFIG).
 *
 * dockerd runs in namespaces a holder process of the test makes and keeps
 * (`unshare --net --mount`, then `sleep`), entered with nsenter:
 *
 *  - a network namespace with only `lo` up, where dockerd makes docker0
 *    (172.17.0.1/16), its veths and its iptables rules, and docker-proxy
 *    listens for published ports; curl reaches those through `inNetns`;
 *  - a private mount namespace where /run and /opt are folders of the
 *    scratch folder bound over the host's: containerd 1.6 puts its shims'
 *    sockets in /run/containerd/s whatever its state folder is
 *    (runtime/v2/shim/util_unix.go, `socketRoot`), dockerd its plugin folder
 *    in /run/docker/plugins, and containerd's opt plugin, which dockerd's
 *    generated containerd.toml leaves at its default, makes /opt/containerd.
 *    The overlay, shm and network-namespace mounts are made there too, so
 *    none reaches the host's mount table; cleanup checks that none is left
 *    in it before the holder ends.
 *
 * Containers' cgroups go under `--cgroup-parent /gcr-dk-<8 hex>` in every
 * hierarchy, for finding what is left and removing the parent afterwards.
 * gcr runs with the environment dockerd would have from its service: no
 * GCR_STATE (the tests' own variable), so whatever gcr writes outside the
 * `--root` its shim passes shows in `hostDockerState()`.
 *
 * The image is the busybox image of tests/oci/podman_env.ts (umoci), copied
 * by skopeo into a docker-archive named `gcr-busybox:latest`, kept in
 * `$GCR_TEST_CACHE/docker/` and `docker load`ed into each environment.
 *
 * Machine facts (docs/design.md §4): `--default-ulimit nofile=1024:1024`
 * (raising rlimits fails without CAP_SYS_RESOURCE) and the cgroupfs driver.
 *
 * @module
 */
import { join } from "node:path";
import {
  describe,
  ensureFixtureDirs,
  FIXTURES,
  GCR,
  isDead,
  killAll,
  liveProcessesWith,
  makeShortDir,
  memo,
  missingPrograms,
  missingRoot,
  mountsUnder,
  pathsState,
  quote,
  run,
  Running,
  type RunOptions,
  type RunResult,
  waitGone,
  which,
} from "../fixtures.ts";
import { exists, readTextOr } from "../../host/files.ts";
import { busyboxImageUnavailable } from "../oci/podman_env.ts";
import { buildDockerArchives } from "./docker_archives.ts";

/** Debian's client; /usr/local/bin/docker, when present, is another, newer one. */
const DOCKER = "/usr/bin/docker";
const DOCKERD = "/usr/sbin/dockerd";
/** The busybox image's name once loaded (`sh` its command). */
const DOCKER_IMAGE = "gcr-busybox:latest";
/** The runtimes every environment knows, by the name `docker run --runtime` takes. */
export const RUNTIME_NAMES = ["runc", "gcr"] as const;
export type RuntimeName = typeof RUNTIME_NAMES[number];
/** A third runtime: gcr with `--trace-dir <env>/traces`, given as daemon.json's `runtimeArgs`, as the README shows it. */
export const TRACED = "gcr-traced";

/** Where the built image archive is kept between runs; bump the name when the recipe changes. */
const CACHE = join(FIXTURES, "docker");
const ARCHIVE = join(CACHE, "gcr-busybox-docker-v1.tar");
const ENVS = join(FIXTURES, "dk");
/**
 * A unix socket's path has to fit in sun_path (108 bytes with its NUL); the
 * longest dockerd makes under the folder is its containerd's debug socket.
 */
const LONGEST_SOCKET = "/x/containerd/containerd-debug.sock";
const MAX_DIR_LENGTH = 107 - LONGEST_SOCKET.length;
const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * The paths outside the scratch folder dockerd, its containerd, the shims,
 * the client or gcr could write to. /run/gcr and /run/runc are not among
 * them: in dockerd's mount namespace /run is the folder's (cleanup checks
 * there), and on the host other engines' tests use them.
 */
const HOST_PATHS = [
  "/etc/docker",
  "/var/lib/docker",
  "/run/docker",
  "/run/docker.sock",
  "/etc/containerd",
  "/var/lib/containerd",
  "/run/containerd",
  "/opt/containerd",
  "/var/lib/gcr",
  `${Deno.env.get("HOME") ?? "/root"}/.docker`,
];

/** Why the Docker tests cannot run here, or undefined. */
export function dockerUnavailable(): string | undefined {
  const debian = [DOCKER, DOCKERD].filter((path) => !exists(path));
  return missingRoot() ??
    (debian.length ? `not installed: ${debian.join(", ")} (apt-get install docker.io)` : undefined) ??
    missingPrograms("containerd", "containerd-shim-runc-v2", "runc", "skopeo", "nsenter", "ip", "script", "curl") ??
    busyboxImageUnavailable();
}

// ---------------------------------------------------------------------------
// The image

/** The busybox image as a docker-archive, built once (from podman_env's OCI layout, by skopeo) and kept in CACHE. */
function dockerImageArchive(): Promise<string> {
  return memo("docker-image", buildArchive);
}

async function buildArchive(): Promise<string> {
  await buildDockerArchives(CACHE, [{ name: DOCKER_IMAGE, file: ARCHIVE }]);
  return ARCHIVE;
}

// ---------------------------------------------------------------------------
// The environment

export interface DockerEnv {
  /** The scratch folder holding everything. */
  readonly dir: string;
  /** dockerd's API socket. */
  readonly socket: string;
  /** dockerd's pid. */
  readonly pid: number;
  /** The pid of the process holding the network and mount namespaces dockerd runs in. */
  readonly holder: number;
  /** The cgroup every container goes under (`--cgroup-parent`), in each hierarchy. */
  readonly cgroupParent: string;
  /** The `--root` dockerd's shim passes to both runtimes (`<exec-root>/runtime-runc`, Docker's namespace below). */
  readonly runtimeRoot: string;
  /** Where the gcr-traced runtime writes its trace files. */
  readonly traces: string;
  readonly image: string;
  /** `docker -H <socket> <args…>` to completion (default timeout 60 s). */
  docker(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /**
   * `docker … <args…>` started under a pseudo-terminal (`script -qec`), its
   * stdin a pipe to type into: the exit status is docker's, stdout the
   * terminal's output (CRLF line ends).
   */
  tty(args: readonly string[], options?: RunOptions): Running;
  /** `program args…` in dockerd's network namespace (where docker0 and published ports are). */
  inNetns(program: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** What dockerd printed so far (its log), for failure messages. */
  log(): string;
  /**
   * Removes the containers, stops dockerd by pid (SIGTERM, then waits) and
   * the holder, checks that no process, mount, runtime state or cgroup of
   * the environment is left (removing what is, then failing), and removes
   * the folder. Idempotent.
   */
  cleanup(): Promise<void>;
}

/** Creates a Docker environment with the busybox image loaded. Call `cleanup` in a finally block. */
export async function dockerEnv(): Promise<DockerEnv> {
  const runc = which("runc");
  if (!runc) throw new Error("runc is not installed");
  const archive = await dockerImageArchive();
  ensureFixtureDirs();
  await reapStaleEnvs();
  const dir = makeShortDir(ENVS, MAX_DIR_LENGTH, "dockerd's sockets");
  const env = new Env(dir);
  try {
    await env.start();
    await env.load(archive);
  } catch (error) {
    await env.cleanup().catch((cleanupError) => console.error(`${cleanupError}`));
    throw error;
  }
  return env;
}

/** The namespaces' holder: /run and /opt replaced by the folder's, loopback up, then `sleep` keeps them. */
const HOLDER_SCRIPT = `set -e
mount --bind "$1/run" /run
mount --bind "$1/opt" /opt
ip link set lo up
echo ready
exec sleep 2147483647`;

class Env implements DockerEnv {
  readonly socket: string;
  readonly cgroupParent: string;
  readonly runtimeRoot: string;
  readonly image = DOCKER_IMAGE;
  #holder: Running | undefined;
  #dockerd: Running | undefined;
  #cleaned = false;

  constructor(readonly dir: string) {
    this.socket = join(dir, "docker.sock");
    this.cgroupParent = `/gcr-dk-${dir.slice(dir.lastIndexOf("/") + 1)}`;
    this.runtimeRoot = join(dir, "x", "runtime-runc");
  }

  get pid(): number {
    if (!this.#dockerd) throw new Error("dockerd is not running");
    return this.#dockerd.pid;
  }

  get holder(): number {
    if (!this.#holder) throw new Error("no namespace holder");
    return this.#holder.pid;
  }

  log(): string {
    return this.#dockerd?.stderr ?? "";
  }

  get traces(): string {
    return join(this.dir, "traces");
  }

  async start(): Promise<void> {
    for (const sub of ["run", "opt", "cli"]) Deno.mkdirSync(join(this.dir, sub), { mode: 0o755 });
    Deno.writeTextFileSync(
      join(this.dir, "daemon.json"),
      JSON.stringify({
        "deprecated-key-path": join(this.dir, "key.json"),
        runtimes: { [TRACED]: { path: GCR, runtimeArgs: ["--trace-dir", this.traces] } },
      }) + "\n",
    );
    this.#holder = new Running("unshare", [
      "--net",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      HOLDER_SCRIPT,
      "sh",
      this.dir,
    ], {
      timeoutMs: 3600_000,
    });
    Deno.writeTextFileSync(join(this.dir, "holder.pid"), String(this.#holder.pid));
    await this.#holder.waitForStdout(/ready/);
    const args = [
      "--config-file",
      join(this.dir, "daemon.json"),
      "--data-root",
      join(this.dir, "root"),
      "--exec-root",
      join(this.dir, "x"),
      "--pidfile",
      join(this.dir, "dockerd.pid"),
      "-H",
      `unix://${this.socket}`,
      "--exec-opt",
      "native.cgroupdriver=cgroupfs",
      "--cgroup-parent",
      this.cgroupParent,
      "--default-ulimit",
      "nofile=1024:1024",
      "--default-runtime",
      "runc",
      "--add-runtime",
      `gcr=${GCR}`,
      // Containers left running at cleanup are removed first; this bounds a stuck one.
      "--shutdown-timeout",
      "5",
    ];
    // nsenter execs dockerd: the pid is dockerd's own.
    this.#dockerd = new Running("nsenter", ["-t", String(this.holder), "-n", "-m", DOCKERD, ...args], {
      timeoutMs: 3600_000,
      unsetEnv: ["GCR_STATE", "GCR_RUN", "DOCKER_HOST", "DOCKER_CONFIG"],
    });
    await this.#dockerd.waitForOutput("stderr", /API listen on /, 60_000);
  }

  /** Loads the image archive and checks that the image is there. */
  async load(archive: string): Promise<void> {
    const loaded = await this.docker(["load", "--input", archive], { timeoutMs: 120_000 });
    if (loaded.code !== 0) throw new Error(`docker load failed\n${describe(loaded)}`);
    const inspect = await this.docker(["image", "inspect", "--format", "{{.Id}}", this.image]);
    if (inspect.code !== 0) throw new Error(`${this.image} is missing after docker load\n${describe(loaded)}`);
  }

  #argv(args: readonly string[]): string[] {
    return [DOCKER, "-H", `unix://${this.socket}`, ...args];
  }

  #options(options: RunOptions): RunOptions {
    return { timeoutMs: 60_000, ...options, env: { DOCKER_CONFIG: join(this.dir, "cli"), ...options.env } };
  }

  docker(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const [program, ...rest] = this.#argv(args);
    return run(program!, rest, this.#options(options));
  }

  tty(args: readonly string[], options: RunOptions = {}): Running {
    const line = this.#argv(args).map(quote).join(" ");
    return new Running("script", ["-qec", line, "/dev/null"], { stdinPipe: true, ...this.#options(options) });
  }

  inNetns(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return run("nsenter", ["-t", String(this.holder), "-n", program, ...args], { timeoutMs: 30_000, ...options });
  }

  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    const problems: string[] = [];
    if (this.#dockerd && !this.#dockerd.exited) {
      const ids = await this.docker(["ps", "--all", "--quiet", "--no-trunc"]);
      const all = ids.stdout.split("\n").filter(Boolean);
      if (all.length) {
        const removed = await this.docker(["rm", "--force", ...all]);
        if (removed.code !== 0) problems.push(`docker rm --force failed\n${describe(removed)}`);
      }
      this.#dockerd.kill("SIGTERM");
      const stopped = await Promise.race([
        this.#dockerd.finish().then(() => true, () => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000)),
      ]);
      if (!stopped) {
        problems.push(`dockerd ${this.#dockerd.pid} did not end within 30 s of SIGTERM`);
        this.#dockerd.kill("SIGKILL");
        await this.#dockerd.finish().catch(() => {});
      }
    }
    if (this.#holder && !this.#holder.exited) {
      problems.push(...await inspectLeftovers(this.dir, this.#holder.pid, this.cgroupParent));
      this.#holder.kill("SIGKILL");
      await this.#holder.finish().catch(() => {});
    }
    problems.push(...removeCgroupParent(this.cgroupParent));
    try {
      Deno.removeSync(this.dir, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) problems.push(`cannot remove ${this.dir}: ${error}`);
    }
    this.#cleaned = true;
    if (problems.length) {
      throw new Error(
        `docker environment cleanup:\n${problems.join("\n")}\n--- dockerd's log (end) ---\n${this.log().slice(-4000)}`,
      );
    }
  }
}

/** Live processes other than `holder` in the holder's network or mount namespace, or naming the folder. */
function envProcesses(dir: string, holder: number): number[] {
  const nsOf = (pid: number | string, ns: string) => {
    try {
      return Deno.readLinkSync(`/proc/${pid}/ns/${ns}`);
    } catch {
      return undefined;
    }
  };
  const net = nsOf(holder, "net");
  const mnt = nsOf(holder, "mnt");
  const found = new Set(liveProcessesWith(dir));
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === holder) continue;
    if ((nsOf(entry.name, "net") === net || nsOf(entry.name, "mnt") === mnt) && !isDead(Number(entry.name))) {
      found.add(Number(entry.name));
    }
  }
  found.delete(holder);
  return [...found];
}

/** Each hierarchy's folder for the environment's `--cgroup-parent`. */
function parentFolders(cgroupParent: string): string[] {
  try {
    return [...Deno.readDirSync(CGROUP_ROOT)].filter((e) => e.isDirectory).map((e) =>
      join(CGROUP_ROOT, e.name, cgroupParent)
    ).filter(exists);
  } catch {
    return [];
  }
}

/** Live processes in the containers' cgroups (under `--cgroup-parent`), in any hierarchy. */
function containerProcesses(cgroupParent: string): number[] {
  const pids = new Set<number>();
  for (const parent of parentFolders(cgroupParent)) {
    for (const entry of Deno.readDirSync(parent)) {
      if (!entry.isDirectory) continue;
      for (const pid of readTextOr(join(parent, entry.name, "cgroup.procs")).split("\n").filter(Boolean)) {
        pids.add(Number(pid));
      }
    }
  }
  return [...pids];
}

/**
 * With dockerd stopped and the holder still keeping its namespaces: what
 * the environment left. Processes are killed and waited for; the returned
 * lines say what there was.
 */
async function inspectLeftovers(dir: string, holder: number, cgroupParent: string): Promise<string[]> {
  const problems: string[] = [];
  const leftovers = () => [...new Set([...envProcesses(dir, holder), ...containerProcesses(cgroupParent)])];
  const survivors = leftovers();
  if (survivors.length) {
    const names = survivors.map((pid) => `${pid} (${readTextOr(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim()})`);
    problems.push(`processes left after dockerd stopped: ${names.join(", ")}`);
    killAll(survivors);
    const stuck = await waitGone(leftovers, 5000);
    if (stuck.length) problems.push(`processes that would not die: ${stuck.join(" ")}`);
  }
  const mounted = mountsUnder(dir, holder);
  if (mounted.length) problems.push(`mounts left under ${dir} in dockerd's mount namespace: ${mounted.join(" ")}`);
  const states = (folder: string) => {
    try {
      return [...Deno.readDirSync(folder)].map((e) => join(folder, e.name));
    } catch {
      return [];
    }
  };
  const runtimeState = states(join(dir, "x", "runtime-runc", "moby"));
  if (runtimeState.length) problems.push(`runtime state left: ${runtimeState.join(" ")}`);
  const shimSockets = states(join(dir, "run", "containerd", "s"));
  if (shimSockets.length) problems.push(`shim sockets left: ${shimSockets.join(" ")}`);
  for (const other of ["gcr", "runc"]) {
    if (exists(join(dir, "run", other))) problems.push(`/run/${other} made in dockerd's mount namespace`);
  }
  return problems;
}

/** Removes the `--cgroup-parent` folders (deepest first); a container folder still there is a problem. */
function removeCgroupParent(cgroupParent: string): string[] {
  const problems: string[] = [];
  for (const parent of parentFolders(cgroupParent)) {
    for (const entry of Deno.readDirSync(parent)) {
      if (!entry.isDirectory) continue;
      problems.push(`container cgroup left: ${join(parent, entry.name)}`);
      try {
        Deno.removeSync(join(parent, entry.name));
      } catch (error) {
        problems.push(`cannot remove ${join(parent, entry.name)}: ${error}`);
      }
    }
    try {
      Deno.removeSync(parent);
    } catch (error) {
      problems.push(`cannot remove ${parent}: ${error}`);
    }
  }
  return problems;
}

/**
 * Environments of earlier, interrupted runs (over an hour old): the
 * processes of each (its holder, recognised by the folder in its mount
 * table, and whatever runs in the holder's namespaces or in the
 * environment's cgroups) are killed by pid, then its cgroups and folder
 * removed.
 */
async function reapStaleEnvs(): Promise<void> {
  Deno.mkdirSync(ENVS, { recursive: true, mode: 0o755 });
  for (const entry of Deno.readDirSync(ENVS)) {
    const dir = join(ENVS, entry.name);
    const age = Date.now() - (Deno.lstatSync(dir).mtime?.getTime() ?? Date.now());
    if (age < 3600_000) continue;
    const cgroupParent = `/gcr-dk-${entry.name}`;
    const holder = Number(readTextOr(join(dir, "holder.pid")).trim());
    const holds = holder > 0 && readTextOr(`/proc/${holder}/mountinfo`).includes(`${dir}/run `);
    const leftovers = () => [
      ...new Set([
        ...(holds && !isDead(holder) ? [holder, ...envProcesses(dir, holder)] : []),
        ...liveProcessesWith(dir),
        ...containerProcesses(cgroupParent),
      ]),
    ];
    killAll(leftovers());
    await waitGone(leftovers, 5000);
    removeCgroupParent(cgroupParent);
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* still in use: left for the next run */ }
  }
}

// ---------------------------------------------------------------------------
// The host, as Docker could change it

/**
 * A description of the host state Docker could touch outside an
 * environment's folder: the paths in HOST_PATHS (each entry with its kind
 * and modification time), Docker's cgroups (`docker`, `gcr-dk-*`), its
 * network links (docker0, br-…, veth…) and the firewall's Docker rules. Two equal snapshots mean
 * Docker left the host alone.
 */
export async function hostDockerState(): Promise<string[]> {
  const out = pathsState(HOST_PATHS);
  for (const hierarchy of Deno.readDirSync(CGROUP_ROOT)) {
    try {
      for (const entry of Deno.readDirSync(join(CGROUP_ROOT, hierarchy.name))) {
        if (entry.isDirectory && /^(docker|gcr-dk-)/.test(entry.name)) {
          out.push(`cgroup ${hierarchy.name}/${entry.name}`);
        }
      }
    } catch { /* not a hierarchy */ }
  }
  // Docker's own names only: other tests on this machine may add and remove links of theirs meanwhile.
  for (const entry of Deno.readDirSync("/sys/class/net")) {
    if (/^(docker\d+|br-[0-9a-f]{12}|veth[0-9a-f]{7})$/.test(entry.name)) out.push(`link ${entry.name}`);
  }
  const iptables = which("iptables-save");
  if (iptables) {
    const rules = await run(iptables, []);
    out.push(...rules.stdout.split("\n").filter((line) => /docker/i.test(line)).map((l) => `iptables ${l}`));
  }
  return out.sort();
}
