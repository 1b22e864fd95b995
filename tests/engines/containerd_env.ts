/**
 * A containerd of the tests' own, for driving an OCI runtime (gcr, or runc
 * as the reference) the way containerd does: through its runc shim
 * (containerd-shim-runc-v2), asked for by `ctr run --runc-binary` or by the
 * CRI plugin's runtime handlers, as kubelet would.
 *
 * Everything containerd keeps lives in one scratch folder
 * (`$GCR_TEST_CACHE/cd/<8 hex>`, short: the grpc socket's path must fit in
 * 108 bytes): its config.toml, root, state and temp folders, the socket, the
 * opt plugin's folder, the CNI folders (empty: pods use the host's network,
 * which is the test's network namespace), and each runtime's `--root`.
 * /etc/containerd/config.toml is not read (`--config`).
 *
 * containerd runs under `unshare --net --mount`: in a network namespace of
 * its own (loopback up, for the CRI's streaming server), and in a private
 * mount namespace where /run is an empty tmpfs, because containerd 1.6 puts
 * its shims' sockets in /run/containerd/s whatever its state folder is
 * (runtime/v2/shim/util_unix.go, `socketRoot`) and ctr its FIFOs in
 * /run/containerd/fifo; `ctr` runs in that mount namespace too (nsenter).
 * The snapshots' and the CRI's mounts are made there, so none reaches the
 * host's mount table, and they go with the namespace's last process.
 *
 * The images are built by independent tools: the busybox image of
 * tests/oci/podman_env.ts (umoci), a "pause" image made from it by umoci
 * (entrypoint `sleep 2147483647`), each copied by skopeo into a
 * docker-archive named `localhost/…:latest`, kept in
 * `$GCR_TEST_CACHE/containerd/` and imported with `ctr images import`.
 *
 * The ctr namespace is named after the folder (`gcrt-<8 hex>`), and so is
 * the cgroup parent given to CRI pods (`/gcrt-<8 hex>`): ctr puts a task in
 * the cgroup `/<namespace>/<id>`, so one cgroup folder per hierarchy holds
 * every container of the environment, for finding their processes and
 * removing what is left.
 *
 * gcr runs with the environment containerd would have from its service:
 * no GCR_STATE (the tests' own variable), so whatever gcr writes outside the
 * `--root` its shim passes shows in `hostContainerdState()`.
 *
 * @module
 */
import { basename, join } from "node:path";
import {
  describe,
  ensureFixtureDirs,
  FIXTURES,
  GCR,
  killAll,
  liveProcessesWith,
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
import { assertEquals } from "../helpers.ts";
import { buildDockerArchives } from "./docker_archives.ts";
import { sleep } from "../../host/time.ts";
import { busyboxImageUnavailable, PODMAN_IMAGE } from "../oci/podman_env.ts";

/** The busybox image's name once imported (`sh` its command). */
export const BUSYBOX_IMAGE = PODMAN_IMAGE;
/** The pods' sandbox image: busybox sleeping for ever. */
export const PAUSE_IMAGE = "localhost/gcr-pause:latest";
/** The namespace the CRI plugin keeps its images and containers in. */
export const CRI_NAMESPACE = "k8s.io";
/** The runtimes every environment knows, as CRI handlers and for `ctr run --runc-binary`. */
export const RUNTIME_NAMES = ["runc", "gcr"] as const;
export type RuntimeName = typeof RUNTIME_NAMES[number];
/**
 * A third CRI handler: gcr with `--trace-dir <env>/traces`, through a
 * wrapper named as its BinaryName (the runc shim passes no arguments), as
 * the README shows it.
 */
export const TRACED = "gcr-traced";
const HANDLERS = [...RUNTIME_NAMES, TRACED] as const;
type HandlerName = typeof HANDLERS[number];

/** Where the built image archives are kept between runs; bump the names when the recipe changes. */
const CACHE = join(FIXTURES, "containerd");
const ARCHIVES = { busybox: join(CACHE, "gcr-busybox-docker-v1.tar"), pause: join(CACHE, "gcr-pause-docker-v1.tar") };
const ENVS = join(FIXTURES, "cd");
/** A unix socket's path has to fit in sun_path (108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;
const CGROUP_ROOT = "/sys/fs/cgroup";

/**
 * The paths outside the scratch folder containerd, its shims, ctr or gcr
 * could create or write to. Not /run's others (/run/gcr, /run/runc): the
 * environment's /run is its own, and the podman tests use the host's; nor
 * /var/lib/containers, podman's, which only the image build's skopeo could
 * write (runWithoutBlobCache keeps it from doing so).
 */
const HOST_PATHS = [
  "/etc/containerd",
  "/var/lib/containerd",
  "/run/containerd",
  "/opt/containerd",
  "/etc/cni",
  "/opt/cni",
  "/var/lib/cni",
  "/var/lib/gcr",
];

/** Why the containerd tests cannot run here, or undefined. */
export function containerdUnavailable(): string | undefined {
  return missingRoot() ??
    missingPrograms("containerd", "ctr", "containerd-shim-runc-v2", "runc", "skopeo", "nsenter", "ip", "script") ??
    busyboxImageUnavailable();
}

// ---------------------------------------------------------------------------
// The images

/** The busybox and pause images as docker-archives, built once and kept in CACHE. */
export function containerdImageArchives(): Promise<typeof ARCHIVES> {
  return memo("containerd-images", buildImages);
}

async function buildImages(): Promise<typeof ARCHIVES> {
  await buildDockerArchives(CACHE, [
    { name: BUSYBOX_IMAGE, file: ARCHIVES.busybox },
    {
      name: PAUSE_IMAGE,
      file: ARCHIVES.pause,
      config: ["--clear", "config.cmd", "--config.entrypoint", "sleep", "--config.entrypoint", "2147483647"],
    },
  ]);
  return ARCHIVES;
}

// ---------------------------------------------------------------------------
// The environment

export interface ContainerdEnv {
  /** The scratch folder holding everything. */
  readonly dir: string;
  /** containerd's grpc socket (the CRI's endpoint too). */
  readonly socket: string;
  /** containerd's pid. */
  readonly pid: number;
  /** The namespace `ctr()` works in; also the name of the environment's cgroup folder. */
  readonly namespace: string;
  /** The cgroup parent for CRI pods (`/<namespace>`). */
  readonly cgroupParent: string;
  /** The runtime binary of each runtime name. */
  binary(runtime: RuntimeName): string;
  /** Where the gcr-traced handler's gcr writes its trace files. */
  readonly traces: string;
  /**
   * The `--root` the shim passes to `runtime` for containers of containerd's
   * `namespace` (the CRI handler's Root, or ctr's `--runc-root`, and the namespace).
   */
  runtimeRoot(runtime: RuntimeName, namespace: string): string;
  /** `ctr --namespace <namespace> <args…>` to completion (default timeout 60 s). */
  ctr(args: readonly string[], options?: CtrOptions): Promise<RunResult>;
  /** `ctr … <args…>` under a pseudo-terminal (`script -qec`): the exit status is ctr's, stdout the terminal's output. */
  tty(args: readonly string[], options?: CtrOptions): Promise<RunResult>;
  /** `ctr … run --runc-binary <runtime> --runc-root <root> <args…>`. */
  runArgs(runtime: RuntimeName, args: readonly string[]): string[];
  /** Imports the busybox and pause images into `namespace` (default: the environment's). */
  importImages(namespace?: string): Promise<void>;
  /** What is left of the containers: processes, mounts, and each runtime's records. */
  leftovers(): Leftovers;
  /** containerd's stderr so far, for failure messages. */
  log(): string;
  /** containerd's stderr so far, whole: its shims' log lines are in it. */
  logText(): string;
  /** Stops containerd (by pid) and removes every process, mount, cgroup and file the environment made. Idempotent. */
  cleanup(): Promise<void>;
}

export interface CtrOptions extends RunOptions {
  /** The containerd namespace; default: the environment's. */
  namespace?: string;
}

export interface Leftovers {
  /** Processes of the environment but containerd: shims, runtimes, containers (pid and command line). */
  processes: string[];
  /** Mount points under the scratch folder, in containerd's mount namespace or the host's. */
  mounts: string[];
  /** Entries in the runtimes' state roots (`<runtime>/<namespace>/<id>`). */
  records: string[];
  /** Cgroup folders left below the environment's own (`/<namespace>` in each hierarchy, which runc leaves too). */
  cgroups: string[];
}

/** Starts a containerd of the test's own (images not imported yet). Call `cleanup` in a finally block. */
export async function containerdEnv(): Promise<ContainerdEnv> {
  const archives = await containerdImageArchives();
  ensureFixtureDirs();
  const dir = makeEnvDir();
  reapStaleEnvs();
  const env = new Env(dir, archives);
  try {
    await env.start();
  } catch (error) {
    await env.cleanup().catch(() => {});
    throw error;
  }
  return env;
}

function makeEnvDir(): string {
  Deno.mkdirSync(ENVS, { recursive: true, mode: 0o755 });
  for (;;) {
    const name = [...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const dir = join(ENVS, name);
    // The longest socket in the folder: containerd's, with ".ttrpc" after it.
    if (join(dir, "c.sock.ttrpc").length > MAX_SOCKET_PATH) {
      throw new Error(`${dir} is too long for a unix socket's path: set GCR_TEST_CACHE to a shorter folder`);
    }
    try {
      Deno.mkdirSync(dir, { mode: 0o711 });
      return dir;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
}

function namespaceOf(dir: string): string {
  return `gcrt-${basename(dir)}`;
}

function configToml(dir: string, binaries: Record<HandlerName, string>): string {
  const runtimes = HANDLERS.map((name) => `
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${name}]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${name}.options]
  BinaryName = "${binaries[name]}"
  Root = "${dir}/runtimes/${name}"
`).join("");
  return `# Written by tests/engines/containerd_env.ts: a containerd confined to ${dir}.
version = 2
root = "${dir}/root"
state = "${dir}/state"
temp = "${dir}/tmp"
# Snapshotters that probe the host's devices, pools or file systems, and tracing.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "${dir}/c.sock"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  disable_cgroup = false
  systemd_cgroup = false
  disable_apparmor = true
  enable_selinux = false
  # This VM lacks CAP_SYS_RESOURCE: runc fails to lower oom_score_adj to the sandbox's -998.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "${dir}/cni/bin"
  conf_dir = "${dir}/cni/conf"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
${runtimes}`;
}

function cgroupFolders(namespace: string): string[] {
  try {
    return [...Deno.readDirSync(CGROUP_ROOT)].filter((e) => e.isDirectory).map((e) =>
      join(CGROUP_ROOT, e.name, namespace)
    ).filter(exists);
  } catch {
    return [];
  }
}

/** Every folder under `root` (itself included), deepest first. */
function foldersDeepestFirst(root: string): string[] {
  const found: string[] = [];
  const walk = (folder: string) => {
    try {
      for (const entry of Deno.readDirSync(folder)) if (entry.isDirectory) walk(join(folder, entry.name));
    } catch { /* gone */ }
    found.push(folder);
  };
  walk(root);
  return found;
}

/** Live processes in the cgroup folders named `namespace`, at any depth. */
function cgroupProcesses(namespace: string): number[] {
  const pids = new Set<number>();
  for (const top of cgroupFolders(namespace)) {
    for (const folder of foldersDeepestFirst(top)) {
      for (const pid of readTextOr(join(folder, "cgroup.procs")).split("\n").filter(Boolean)) pids.add(Number(pid));
    }
  }
  return [...pids];
}

/** Live processes whose namespace `kind` is `link`. */
function processesInNamespace(kind: "net" | "mnt", link: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${entry.name}/ns/${kind}`) !== link) continue;
      const stat = readTextOr(`/proc/${entry.name}/stat`).replace(/^.*\) /s, "");
      if (stat && stat[0] !== "Z" && stat[0] !== "X") found.push(Number(entry.name));
    } catch { /* gone */ }
  }
  return found;
}

function commandLine(pid: number): string {
  return `${pid} ${readTextOr(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim()}`;
}

class Env implements ContainerdEnv {
  readonly socket: string;
  readonly namespace: string;
  readonly cgroupParent: string;
  #daemon: Running | undefined;
  /**
   * containerd's network and mount namespaces, each with an open file that
   * keeps it (and so its inode number) alive until cleanup ends: a freed
   * namespace's number is soon another's, another engine's container among them.
   */
  #namespaces: { net: string; mnt: string; held: Deno.FsFile[] } | undefined;
  #cleaned = false;

  constructor(readonly dir: string, readonly archives: typeof ARCHIVES) {
    this.socket = join(dir, "c.sock");
    this.namespace = namespaceOf(dir);
    this.cgroupParent = `/${this.namespace}`;
  }

  get pid(): number {
    if (!this.#daemon) throw new Error("containerd is not running");
    return this.#daemon.pid;
  }

  binary(runtime: RuntimeName): string {
    const path = runtime === "gcr" ? GCR : which("runc");
    if (!path) throw new Error(`${runtime} is not installed`);
    return path;
  }

  get traces(): string {
    return join(this.dir, "traces");
  }

  runtimeRoot(runtime: RuntimeName, namespace: string): string {
    return join(this.dir, "runtimes", runtime, namespace);
  }

  async start(): Promise<void> {
    for (const sub of ["root", "state", "tmp", "opt", "cni/bin", "cni/conf", "runtimes"]) {
      Deno.mkdirSync(join(this.dir, sub), { recursive: true, mode: 0o711 });
    }
    const traced = join(this.dir, TRACED);
    Deno.writeTextFileSync(traced, `#!/bin/sh\nexec ${quote(GCR)} --trace-dir ${quote(this.traces)} "$@"\n`, {
      mode: 0o755,
    });
    const binaries = {
      ...Object.fromEntries(RUNTIME_NAMES.map((name) => [name, this.binary(name)])),
      [TRACED]: traced,
    };
    const config = join(this.dir, "config.toml");
    Deno.writeTextFileSync(config, configToml(this.dir, binaries as Record<HandlerName, string>));
    // Its own network namespace (loopback up), and an empty /run: see the module notes.
    const script =
      'ip link set lo up && mount -t tmpfs -o mode=0755,size=64m gcr-test-run /run && exec containerd --config "$1"';
    this.#daemon = new Running("unshare", [
      "--net",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      config,
    ], {
      env: { TMPDIR: join(this.dir, "tmp") },
      unsetEnv: ["GCR_STATE", "GCR_RUN"],
    });
    const daemon = this.#daemon;
    const deadline = performance.now() + 20_000;
    for (;;) {
      if (daemon.exited) throw new Error(`containerd exited at start\n${daemon.stderr}`);
      if (exists(this.socket)) {
        const version = await this.ctr(["version"], { timeoutMs: 10_000 }).catch(() => undefined);
        if (version?.code === 0) break;
      }
      if (performance.now() > deadline) throw new Error(`containerd did not answer in 20 s\n${daemon.stderr}`);
      await sleep(50);
    }
    const held = (["net", "mnt"] as const).map((kind) => Deno.openSync(`/proc/${daemon.pid}/ns/${kind}`));
    this.#namespaces = {
      net: Deno.readLinkSync(`/proc/${daemon.pid}/ns/net`),
      mnt: Deno.readLinkSync(`/proc/${daemon.pid}/ns/mnt`),
      held,
    };
  }

  #argv(args: readonly string[], namespace = this.namespace): string[] {
    return [
      "nsenter",
      "--target",
      String(this.pid),
      "--mount",
      "ctr",
      "--address",
      this.socket,
      "--namespace",
      namespace,
      ...args,
    ];
  }

  #options(options: CtrOptions): RunOptions {
    const { namespace: _namespace, ...rest } = options;
    return { timeoutMs: 60_000, ...rest, env: { TMPDIR: join(this.dir, "tmp"), ...options.env } };
  }

  ctr(args: readonly string[], options: CtrOptions = {}): Promise<RunResult> {
    const [program, ...rest] = this.#argv(args, options.namespace);
    return run(program!, rest, this.#options(options));
  }

  tty(args: readonly string[], options: CtrOptions = {}): Promise<RunResult> {
    const line = this.#argv(args, options.namespace).map(quote).join(" ");
    return run("script", ["-qec", line, "/dev/null"], this.#options(options));
  }

  runArgs(runtime: RuntimeName, args: readonly string[]): string[] {
    return ["run", "--runc-binary", this.binary(runtime), "--runc-root", join(this.dir, "runtimes", runtime), ...args];
  }

  async importImages(namespace = this.namespace): Promise<void> {
    for (const archive of [this.archives.busybox, this.archives.pause]) {
      const result = await this.ctr(["images", "import", archive], { namespace, timeoutMs: 120_000 });
      if (result.code !== 0) throw new Error(`ctr images import failed\n${describe(result)}\n${this.log()}`);
    }
  }

  /** The environment's live processes but containerd itself. */
  #processes(): number[] {
    const pids = new Set([...liveProcessesWith(this.dir), ...cgroupProcesses(this.namespace)]);
    if (this.#namespaces) {
      for (const pid of processesInNamespace("net", this.#namespaces.net)) pids.add(pid);
      for (const pid of processesInNamespace("mnt", this.#namespaces.mnt)) pids.add(pid);
    }
    if (this.#daemon) pids.delete(this.#daemon.pid);
    return [...pids].sort((a, b) => a - b);
  }

  #mounts(): string[] {
    const inDaemon = this.#daemon && !this.#daemon.exited ? mountsUnder(this.dir, this.#daemon.pid) : [];
    return [...new Set([...inDaemon, ...mountsUnder(this.dir)])];
  }

  #records(): string[] {
    const records: string[] = [];
    for (const runtime of HANDLERS) {
      const root = join(this.dir, "runtimes", runtime);
      try {
        for (const namespace of Deno.readDirSync(root)) {
          for (const entry of Deno.readDirSync(join(root, namespace.name))) {
            records.push(`${runtime}/${namespace.name}/${entry.name}`);
          }
        }
      } catch { /* none made */ }
    }
    return records;
  }

  leftovers(): Leftovers {
    return {
      processes: this.#processes().map(commandLine),
      mounts: this.#mounts(),
      records: this.#records(),
      cgroups: cgroupFolders(this.namespace).flatMap((top) => foldersDeepestFirst(top).filter((f) => f !== top)),
    };
  }

  logText(): string {
    return this.#daemon?.stderr ?? "";
  }

  log(): string {
    const text = this.logText();
    return `--- containerd's log (last 60 lines) ---\n${text.split("\n").slice(-60).join("\n")}`;
  }

  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    const problems: string[] = [];
    const daemon = this.#daemon;
    if (daemon && !daemon.exited) {
      // Tasks left by a failed test: deleting them makes their shims exit.
      for (const namespace of [this.namespace, CRI_NAMESPACE]) {
        const tasks = await this.ctr(["tasks", "ls", "--quiet"], { namespace }).catch(() => undefined);
        for (const id of tasks?.stdout.split("\n").filter(Boolean) ?? []) {
          await this.ctr(["tasks", "delete", "--force", id], { namespace }).catch(() => undefined);
        }
        const containers = await this.ctr(["containers", "ls", "--quiet"], { namespace }).catch(() => undefined);
        for (const id of containers?.stdout.split("\n").filter(Boolean) ?? []) {
          await this.ctr(["containers", "delete", id], { namespace }).catch(() => undefined);
        }
      }
      daemon.kill("SIGTERM");
    }
    if (daemon) {
      const stopped = await new Promise<RunResult | undefined>((resolve) => {
        const timer = setTimeout(() => {
          daemon.kill("SIGKILL");
          resolve(undefined);
        }, 10_000);
        daemon.finish().then((result) => {
          clearTimeout(timer);
          resolve(result);
        }, () => resolve(undefined));
      });
      if (!stopped) problems.push(`containerd (pid ${daemon.pid}) did not stop on SIGTERM in 10 s`);
    }
    const survivors = this.#processes();
    if (survivors.length) {
      problems.push(`processes left after containerd stopped:\n${survivors.map(commandLine).join("\n")}`);
      killAll(survivors);
      const stuck = await waitGone(() => this.#processes(), 5000);
      if (stuck.length) problems.push(`processes that would not die: ${stuck.join(" ")}`);
    }
    // The mount namespace goes with its last process and this hold, and its mounts with it.
    for (const file of this.#namespaces?.held ?? []) file.close();
    this.#namespaces = undefined;
    const mounted = mountsUnder(this.dir).sort((a, b) => b.length - a.length);
    if (mounted.length) problems.push(`mounts left on the host: ${mounted.join(" ")}`);
    for (const mountPoint of mounted) {
      const result = await run("umount", [mountPoint]);
      if (result.code !== 0) await run("umount", ["--lazy", mountPoint]);
    }
    for (const top of cgroupFolders(this.namespace)) {
      for (const folder of foldersDeepestFirst(top)) {
        try {
          Deno.removeSync(folder);
        } catch (error) {
          problems.push(`cannot remove the cgroup ${folder}: ${error}`);
        }
      }
    }
    try {
      Deno.removeSync(this.dir, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) problems.push(`cannot remove ${this.dir}: ${error}`);
    }
    this.#cleaned = true;
    if (problems.length) throw new Error(`containerd environment cleanup:\n${problems.join("\n")}\n${this.log()}`);
  }
}

/**
 * Environments of earlier, interrupted runs (over an hour old): their
 * processes (which name the folder) killed, their cgroup folders and files removed.
 */
function reapStaleEnvs(): void {
  for (const entry of Deno.readDirSync(ENVS)) {
    const path = join(ENVS, entry.name);
    const age = Date.now() - (Deno.lstatSync(path).mtime?.getTime() ?? Date.now());
    if (age < 3600_000) continue;
    killAll(liveProcessesWith(path));
    for (const top of cgroupFolders(namespaceOf(path))) {
      for (const folder of foldersDeepestFirst(top)) {
        try {
          Deno.removeSync(folder);
        } catch { /* still in use */ }
      }
    }
    if (mountsUnder(path).length === 0) {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch { /* left for the next run */ }
    }
  }
}

/** What is left once a test deleted its containers: nothing, and the runtimes' roots empty, as runc leaves its own. */
export function assertNothingLeft(left: Leftovers, what: string, context: string): void {
  assertEquals(left.processes, [], `${what}: no shim, runtime or container process left`, context);
  assertEquals(left.mounts, [], `${what}: no mount left under the environment's folder`, context);
  assertEquals(left.records, [], `${what}: the runtimes' state roots are empty`, context);
  assertEquals(left.cgroups, [], `${what}: no container's cgroup left`, context);
}

// ---------------------------------------------------------------------------
// The host, as containerd could change it

/**
 * A description of what containerd, its shims, ctr and the runtimes could
 * touch outside an environment's folder (HOST_PATHS), and the host's network
 * links. Two equal snapshots mean they left the host alone.
 */
export function hostContainerdState(): string[] {
  const out = pathsState(HOST_PATHS);
  for (const entry of Deno.readDirSync("/sys/class/net")) out.push(`link ${entry.name}`);
  return out.sort();
}
