/**
 * gcr: a container runtime whose every step is visible.
 *
 *   gcr run [options] <image> [command [args…]]
 *   gcr explain run [options] <image> [command [args…]]
 *   gcr pull [options] <source>
 *   gcr images
 *   gcr rm <id>…
 *   gcr prune
 *
 * The command line becomes a plan, the plan a list of steps (data), and the
 * one runner executes them. Exit status: the command's own; 128+N when it
 * was killed by signal N; 126/127 when it could not be run or found; 125
 * when gcr itself failed.
 *
 * @module
 */
import { assertSupportedPlatform, F_DUPFD_CLOEXEC, O } from "./ffi/constants.ts";
import { check } from "./ffi/errno.ts";
import { libc } from "./ffi/libc.ts";
import { openFd } from "./ffi/fds.ts";
import { newContainerId } from "./plan/container_id.ts";
import { requireStaticInit } from "./host/init.ts";
import { INIT_PATH } from "./steps/bind_init.ts";
import { planIds } from "./plan/id_maps.ts";
import { log, runningAs, setQuiet } from "./output/log.ts";
import { checkMountPoints, findRootfs, isPath, MOUNT_POINTS, rootfsDir } from "./image/rootfs.ts";
import { type RunMode, runSteps, showChildCall, showParentOp, StepError } from "./runner/runner.ts";
import { type ContainerCgroup, createContainerCgroup } from "./cgroup/container_cgroup.ts";
import { CgroupUnavailableError } from "./cgroup/hierarchies.ts";
import { parseCpus, parseMemory, parsePidsLimit, type ResourceLimits } from "./cgroup/limits.ts";
import { showCgroupOp } from "./cgroup/ops.ts";
import { planContainerCgroup } from "./cgroup/plan.ts";
import { resolveCapabilities } from "./security/capabilities.ts";
import { seccompProgram } from "./security/seccomp.ts";
import { resolveUser } from "./security/user.ts";
import { containerSteps } from "./steps/pipeline.ts";
import { OVERLAY_HINT, overlayUnsafePath } from "./steps/mount_overlay.ts";
import {
  CONTAINER_ID,
  type ContainerPaths,
  containerPaths,
  type ContainerRecord,
  createContainerState,
  type ExecContext,
  execContext,
  findContainer,
  processStart,
  removeContainer,
  updateRecord,
} from "./state/state.ts";
import { prepareVolume } from "./plan/volumes.ts";
import { etcFiles, parseDns } from "./plan/etc_files.ts";
import { readTextOr } from "./host/files.ts";
import type { ContainerPlan } from "./steps/plan.ts";
import type { Step } from "./steps/step.ts";
import { UsageError } from "./commands/usage.ts";
import { scanOptions } from "./commands/flags.ts";
import { envOption, mergeEnv, workdirOption } from "./plan/container_options.ts";
import { parsePublish, type PortMapping } from "./net/publish.ts";
import type { BridgeAttachment } from "./net/bridge.ts";
import { attachToBridge, detachFromBridge } from "./net/attach.ts";
import {
  inspectCommand,
  killCommand,
  logsCommand,
  parseSignal,
  pruneCommand,
  psCommand,
  rmCommand,
  stopCommand,
} from "./commands/lifecycle.ts";

const USAGE = `usage: gcr run [options] <image> [command [args…]]
       gcr explain run [options] <image> [command [args…]]
       gcr pull [pull options] <source>
       gcr images [--rootfs-dir DIR]
       gcr ps [-a] [-q]      containers (running ones; -a: all)
       gcr exec [-d] [-e K=V] [-w DIR] [-u USER] <container> <command> [args…]
       gcr logs [-f] <container>
       gcr stop [-t SECONDS] <container>…   SIGTERM, then SIGKILL
       gcr kill [-s SIGNAL] <container>…
       gcr inspect <container>…
       gcr rm [-f] <container>…  remove stopped containers (-f: running ones too)
       gcr prune             remove every stopped container

OCI runtime (runc's command line, for engines such as podman):
       gcr [--root DIR] [--log FILE] [--log-format json] create [--bundle B] [--pid-file F]
           [--console-socket S] [--no-pivot] [--preserve-fds N] <id>
       gcr start|state|pause|resume <id>;  gcr kill [--all] <id> [SIGNAL];  gcr delete [--force] <id>
       gcr exec --process P.json [--detach] [--pid-file F] [--console-socket S] <id>
       gcr ps [--format json] <id>;  gcr features;  gcr --version

<image> is a folder under rootfs/ (or --rootfs-dir, or $GCR_ROOT), or a path. When it
is neither (nor busybox) but an image reference, gcr pulls it first.

options (before <image>; everything after it is the command):
  -e, --env KEY=VALUE   set an environment variable (KEY alone: take it from gcr's)
  -w, --workdir DIR     working directory inside the container (default /)
      --hostname NAME   hostname (default: the container id)
  -d, --detach          run in the background: print the id; output goes to gcr logs
      --name NAME       a unique name for gcr ps, exec, logs, stop, rm
  -i, -t                accepted (gcr shares its terminal with the container)
      --net none|host|bridge
                        a network namespace with only loopback (default), the host's, or one on
                        the gcr0 bridge with an address, NAT and -p (root)
  -p, --publish [IP:]HOST:CONTAINER[/udp]
                        with --net bridge: a container port on the host
  -m, --memory SIZE     memory limit (64m, 1g, …); past it the kernel kills the container (exit 137)
      --cpus N          CPU time limit in CPUs (0.5: half of one)
      --pids-limit N    at most N processes and threads
      --dns ADDRESS     a name server for the container's /etc/resolv.conf
      --limits-optional run without the limits where the host cannot give them (rootless, no delegated cgroup v2)
      --cap-add CAP     keep a capability beyond Docker's default set (ALL for every one)
      --cap-drop CAP    drop a capability from it
  -u, --user U[:G]      run as a user (name or uid) and group of the image's /etc/passwd, /etc/group
  -v, --volume HOST:CONTAINER[:ro]
                        bind a host folder or file into the container (read-only with :ro)
      --rm              remove the container's state folder (its writes) when it exits
      --init            run a real init (catatonit or tini from the host) as pid 1
      --rootfs-copy     run on a copy of the image instead of an overlay (kernels without
                        overlayfs in user namespaces)
      --security-opt seccomp=unconfined|PROFILE.json, no-new-privileges=false
      --rootfs-dir DIR  folder that holds images (default ./rootfs)
      --trace           show every step, its libc calls, and what changed
      --step            pause before each step until Enter
  -q, --quiet           no log lines

<source> of gcr pull: a reference (alpine, localhost:5000/team/app:1.2, name@sha256:…),
docker-archive:PATH (docker save output) or oci:DIR[:TAG] (an OCI image layout).
It goes to <rootfs-dir>/<name>; the blob cache is $GCR_CACHE, else /var/cache/gcr
(root) or $XDG_CACHE_HOME/gcr (rootless).

Containers' state (the overlay's upper folder, container.json) is in $GCR_STATE, else
/var/lib/gcr (root) or $XDG_DATA_HOME/gcr (rootless), under containers/<id>.

pull options:
      --platform OS/ARCH[/VARIANT]  from a multi-platform image (default: the host's)
      --insecure                    plain http (always allowed for localhost)
  -u, --username USER               with --password-stdin: the password is read from stdin
      --password-stdin
      --rootfs-dir DIR              folder that holds images (default ./rootfs)
      --name NAME                   folder name (default: the repository's last part,
                                    or the archive's or layout's base name)
  -q, --quiet                       no progress`;

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface RunArgs {
  mode: RunMode;
  quiet: boolean;
  env: string[];
  workdir: string;
  hostname?: string;
  network: "none" | "host" | "bridge";
  /** `-p [host-ip:]host-port:container-port[/proto]`, with --net bridge. */
  publish: PortMapping[];
  rootfsDir?: string;
  image: string;
  command: string[];
  limits: ResourceLimits;
  capAdd: string[];
  capDrop: string[];
  /** `--security-opt seccomp=…`: a profile file or `unconfined`; absent: gcr's default profile. */
  seccomp?: string;
  noNewPrivs: boolean;
  /** `--user name|uid[:group|gid]`. */
  user?: string;
  /** `-v host:container[:ro]`, as given. */
  volumes: string[];
  /** `--rm`: remove the state folder when the container exits. */
  remove: boolean;
  /** `--rootfs-copy`: a copy of the image instead of an overlay. */
  rootfsCopy: boolean;
  /** `--init`: a real init as pid 1. */
  init: boolean;
  /** `--limits-optional`: run without limits where the host cannot give them (rootless on cgroup v1). */
  limitsOptional: boolean;
  /** `--dns ADDRESS`: name servers for the container's resolv.conf. */
  dns: string[];
  /** `--name`: a unique name to refer to the container by. */
  name?: string;
  /** `-d`: run in the background; the output goes to the container's log. */
  detach: boolean;
}

/**
 * Parses `run`'s arguments. Options end at the image, as with docker run: the
 * command's own options pass through untouched (see scanOptions).
 */
export function parseRunArgs(args: readonly string[]): RunArgs {
  const limits: { memoryBytes?: number; cpus?: number; pidsLimit?: number } = {};
  const parsed: Omit<RunArgs, "image" | "command" | "limits"> = {
    volumes: [],
    remove: false,
    rootfsCopy: false,
    init: false,
    limitsOptional: false,
    dns: [],
    publish: [],
    detach: false,
    capAdd: [],
    capDrop: [],
    noNewPrivs: true,
    mode: "run",
    quiet: false,
    env: [],
    workdir: "/",
    network: "none",
  };
  const i = scanOptions(args, "", (name, typed, value) => {
    switch (name) {
      case "e":
      case "env": {
        const entry = envOption(value());
        if (entry !== undefined) parsed.env.push(entry);
        break;
      }
      case "w":
      case "workdir":
        parsed.workdir = workdirOption(value());
        break;
      case "hostname": {
        const host = value();
        if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(host)) {
          throw new UsageError(`invalid hostname ${JSON.stringify(host)}`);
        }
        parsed.hostname = host;
        break;
      }
      case "net":
      case "network": {
        const net = value();
        if (net !== "none" && net !== "host" && net !== "bridge") {
          throw new UsageError(`unsupported network ${JSON.stringify(net)} (supported: none, host, bridge)`);
        }
        parsed.network = net;
        break;
      }
      case "p":
      case "publish":
        try {
          parsed.publish.push(parsePublish(value()));
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        break;
      case "rootfs-dir":
        parsed.rootfsDir = value();
        break;
      case "m":
      case "memory":
        limits.memoryBytes = parseMemory(value(), typed);
        break;
      case "cpus":
        limits.cpus = parseCpus(value());
        break;
      case "pids-limit": {
        const pids = parsePidsLimit(value());
        if (pids === undefined) delete limits.pidsLimit;
        else limits.pidsLimit = pids;
        break;
      }
      case "cap-add":
        parsed.capAdd.push(...value().split(","));
        break;
      case "cap-drop":
        parsed.capDrop.push(...value().split(","));
        break;
      case "security-opt": {
        const option = value();
        const [key, setting] = option.split(/[=:](.*)/s) as [string, string | undefined];
        if (key === "seccomp" && setting) parsed.seccomp = setting;
        else if (key === "no-new-privileges" && (setting === undefined || /^(true|false)$/.test(setting))) {
          parsed.noNewPrivs = setting !== "false";
        } else {
          throw new UsageError(
            `unsupported --security-opt ${
              JSON.stringify(option)
            } (supported: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false])`,
          );
        }
        break;
      }
      case "u":
      case "user":
        parsed.user = value();
        break;
      case "v":
      case "volume":
        parsed.volumes.push(value());
        break;
      case "rm":
        parsed.remove = true;
        break;
      case "name": {
        const wanted = value();
        if (!CONTAINER_ID.test(wanted)) {
          throw new UsageError(
            `invalid container name ${
              JSON.stringify(wanted)
            }: letters, digits and _.+- only, not starting with one of _.+-`,
          );
        }
        parsed.name = wanted;
        break;
      }
      case "d":
      case "detach":
        parsed.detach = true;
        break;
      // gcr run shares its own terminal with the container (the container's
      // process group gets its foreground): -i and -t are what it does anyway.
      case "i":
      case "interactive":
      case "t":
      case "tty":
        break;
      case "rootfs-copy":
        parsed.rootfsCopy = true;
        break;
      case "init":
        parsed.init = true;
        break;
      case "limits-optional":
        parsed.limitsOptional = true;
        break;
      case "dns":
        try {
          parsed.dns.push(parseDns(value()));
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        break;
      case "trace":
        parsed.mode = "trace";
        break;
      case "step":
        parsed.mode = "step";
        break;
      case "q":
      case "quiet":
        parsed.quiet = true;
        break;
      default:
        throw new UsageError(`unknown option ${typed}`);
    }
  });
  if (parsed.publish.length && parsed.network !== "bridge") {
    throw new UsageError("-p publishes ports of a bridged container: add --net bridge");
  }
  const image = args[i];
  if (image === undefined) throw new UsageError("missing <image>");
  const command = args.slice(i + 1);
  return { ...parsed, image, command: command.length ? command : ["sh"], limits };
}

/** The container's environment: defaults, TERM from gcr's, then -e entries in order. */
export function containerEnv(hostname: string, extra: readonly string[], home = "/root"): string[] {
  const term = Deno.env.get("TERM");
  return mergeEnv(
    [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`, `HOME=${home}`, ...(term ? [`TERM=${term}`] : [])],
    extra,
  );
}

/** Whether any resource limit was asked for (then the container gets a cgroup). */
function hasLimits(limits: ResourceLimits): boolean {
  return Object.values(limits).some((value) => value !== undefined);
}

async function planFor(args: RunArgs, resolveRootfs: (image: string) => string): Promise<ContainerPlan> {
  const id = await newContainerId();
  const hostname = args.hostname ?? id;
  const rootfs = resolveRootfs(args.image);
  const capabilities = resolveCapabilities(args.capAdd, args.capDrop);
  // The user is looked up in the image's own /etc/passwd and /etc/group, by
  // gcr: the child cannot read files once it runs only libc calls.
  const user = args.user === undefined ? undefined : resolveUser(args.user, rootfs);
  const seccomp = seccompProgram(args.seccomp, capabilities);
  const init = args.init ? requireStaticInit() : undefined;
  const tty = terminal();
  const paths = containerPaths(id);
  return {
    id,
    hostname,
    rootfs,
    root: paths.merged,
    ...(args.rootfsCopy ? {} : { overlay: { upper: paths.upper, work: paths.work } }),
    volumes: [],
    // With --init, the init is pid 1 and runs the command as its child.
    argv: init ? [INIT_PATH, "--", ...args.command] : args.command,
    ...(init ? { init } : {}),
    ...(tty ? { console: tty } : {}),
    env: containerEnv(hostname, args.env, user?.home),
    workdir: args.workdir,
    ids: planIds(),
    network: args.network,
    security: {
      capabilities,
      noNewPrivs: args.noNewPrivs,
      maskPaths: true,
      ...(user ? { user } : {}),
      ...(seccomp ? { seccomp } : {}),
    },
  };
}

/** gcr's stdin when it is a terminal (`/dev/pts/3`), which bind-console shows the container as /dev/console. */
function terminal(): string | undefined {
  if (!Deno.stdin.isTerminal()) return undefined;
  try {
    const path = Deno.readLinkSync("/proc/self/fd/0");
    return /^\/dev\/(pts\/\d+|tty[A-Za-z0-9]*)$/.test(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

/** The cgroup a run would make, as explain shows it: computed, nothing created. */
function cgroupPreview(id: string, limits: ResourceLimits): NonNullable<ContainerPlan["cgroup"]> {
  const preview = planContainerCgroup(id, limits);
  return { setup: preview.ops.map(showCgroupOp), procs: preview.dirs.map((dir) => `${dir}/cgroup.procs`) };
}

/** `gcr explain run …`: the steps, without running anything. */
export function explain(steps: readonly Step[]): string {
  const lines: string[] = [];
  steps.forEach((step, index) => {
    lines.push(`${String(index + 1).padStart(2)}. ${step.name}: ${step.why}`);
    for (const op of step.parent) showParentOp(op).split("\n").forEach((line) => lines.push(`      gcr:   ${line}`));
    for (const call of step.child) showChildCall(call).forEach((line) => lines.push(`      ${line}`));
  });
  return lines.join("\n");
}

/** Loose: what might be an image reference (`ubuntu`, `ubuntu:20.04`, `host:5000/a/b@sha256:…`). */
const REFERENCE_LIKE = /^(?:docker:\/\/)?[A-Za-z0-9][A-Za-z0-9._:\/@-]*$/;

/**
 * The rootfs of `image`, pulled first when it is not a folder but looks like
 * a reference. The pull code is imported only then: `gcr run`'s start-up
 * does not load it.
 */
async function findOrPull(image: string, dir: string, quiet: boolean): Promise<string> {
  try {
    return findRootfs(image, dir);
  } catch (error) {
    const local = isPath(image) && (image.startsWith("/") || image.startsWith("."));
    if (image === "busybox" || local || !REFERENCE_LIKE.test(image)) throw error;
    const { pullForRun } = await import("./commands/pull.ts");
    let pulled: string;
    try {
      pulled = await pullForRun(image, dir, quiet);
    } catch (pullError) {
      throw new Error(`${(error as Error).message}: cannot pull ${image}: ${(pullError as Error).message}`);
    }
    return findRootfs(pulled, dir);
  }
}

/** `--rootfs-copy`: the image copied into `merged` (with its missing mount points), to be bound onto itself. */
async function copyImage(rootfs: string, merged: string): Promise<void> {
  const copy = await new Deno.Command("cp", { args: ["-a", "--", `${rootfs}/.`, merged], stderr: "piped" }).output();
  if (!copy.success) {
    throw new Error(`--rootfs-copy: cp -a ${rootfs} failed: ${new TextDecoder().decode(copy.stderr).trim()}`);
  }
  for (const name of MOUNT_POINTS) {
    try {
      Deno.mkdirSync(`${merged}/${name}`, { mode: 0o755 });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
}

/** How a run reports to a detached container's monitor (see detach). */
interface RunObserver {
  /** The container is registered: a monitor points its output at the log now. */
  readonly registered?: (paths: ContainerPaths) => void;
  /** The command runs. */
  readonly started?: (id: string) => void;
}

/** What `gcr exec` needs later, from the plan of the run. */
function execContextOf(plan: ContainerPlan): ExecContext {
  return execContext({
    env: plan.env,
    workdir: plan.workdir,
    ids: plan.ids,
    security: plan.security,
    cgroupProcs: plan.cgroup?.procs ?? [],
    namespaces: ["user", "mnt", "pid", "uts", "ipc", ...(plan.network !== "host" ? ["net"] : []), "cgroup"],
  });
}

async function run(argv: readonly string[], observer: RunObserver = {}): Promise<number> {
  const args = parseRunArgs(argv);
  // A detached container's log holds its own output, as docker logs shows it.
  setQuiet(args.quiet || args.detach);
  assertSupportedPlatform();
  if (args.detach && !observer.started) {
    if (args.mode !== "run") throw new UsageError("-d cannot be combined with --trace or --step: they need a terminal");
    return await detach(argv);
  }
  if (args.network === "bridge" && Deno.uid() !== 0) {
    throw new Error(
      "--net bridge needs root: it makes a bridge, veth pairs and NAT rules on the host (rootless: --net none or --net host)",
    );
  }
  const dir = rootfsDir(args.rootfsDir);
  const rootfs = await findOrPull(args.image, dir, args.quiet);
  // mount(2) follows symlinks: /proc -> /etc in an image must not put proc over anything.
  checkMountPoints(rootfs);
  // Checked before anything is made, so a bad -v leaves no container folder.
  for (const spec of args.volumes) prepareVolume(spec, rootfs, undefined);
  let plan = await planFor(args, () => rootfs);
  for (const path of [rootfs, plan.overlay?.upper ?? ""]) {
    if (!args.rootfsCopy && overlayUnsafePath(path)) {
      throw new Error(`${path} contains ",", ":" or "\\", which overlay's options cannot carry: rename it`);
    }
  }
  const paths = containerPaths(plan.id);
  const record: ContainerRecord = {
    id: plan.id,
    ...(args.name !== undefined ? { name: args.name } : {}),
    image: args.image,
    rootfs,
    command: [...args.command],
    created: new Date().toISOString(),
    pid: Deno.pid,
    pidStart: processStart(Deno.pid) ?? "",
    status: "creating",
    ...(args.detach ? { detached: true } : {}),
    ...(args.remove ? { remove: true } : {}),
  };
  createContainerState(paths, record);
  observer.registered?.(paths);
  log(runningAs(Deno.pid, Deno.uid() ?? 0, Deno.gid() ?? 0));
  let cgroup: ContainerCgroup | undefined;
  let exitStatus: number | undefined;
  let bridge: BridgeAttachment | undefined;
  try {
    if (args.network === "bridge") {
      bridge = await attachToBridge(plan.id, args.publish);
      plan = { ...plan, bridge };
      updateRecord(paths, { network: bridge });
    }
    if (args.rootfsCopy) await copyImage(rootfs, paths.merged);
    // Resolved in the image (or its copy); mount points made in upper, never in the image.
    const prepare = (spec: string) =>
      args.rootfsCopy ? prepareVolume(spec, paths.merged, paths.merged) : prepareVolume(spec, rootfs, paths.upper);
    // The container's own /etc/hostname, hosts and resolv.conf, bound first so
    // that a -v onto one of them is mounted on top and wins.
    const generated = etcFiles(
      plan.hostname,
      plan.network,
      args.dns,
      readTextOr("/etc/resolv.conf"),
      bridge?.lease.address,
    ).flatMap(
      ([target, text]) => {
        const file = `${paths.dir}/${target.slice("/etc/".length)}`;
        Deno.writeTextFileSync(file, text, { mode: 0o644 });
        try {
          return [prepare(`${file}:${target}`)];
        } catch {
          return []; // an image whose /etc/hosts leads out of it keeps its own
        }
      },
    );
    const volumes = [...generated, ...args.volumes.map(prepare)];
    plan = { ...plan, volumes };
    if (hasLimits(args.limits)) {
      try {
        // Recorded before they exist, as create does: a gcr killed while
        // making them leaves folders that rm and prune then find (a missing
        // one is no error).
        updateRecord(paths, { cgroups: planContainerCgroup(plan.id, args.limits).dirs });
        cgroup = createContainerCgroup(plan.id, args.limits);
      } catch (error) {
        // Limits that cannot be had are an error unless the user said to go
        // on without them: a container silently unlimited is a surprise.
        if (!(error instanceof CgroupUnavailableError) || !args.limitsOptional) throw error;
        console.error(`gcr: running without limits (--limits-optional): ${error.message}`);
      }
    }
    if (cgroup) {
      plan = {
        ...plan,
        cgroup: { setup: cgroup.ops.map(showCgroupOp), procs: cgroup.paths.map((path) => `${path}/cgroup.procs`) },
      };
      updateRecord(paths, { cgroups: [...cgroup.paths] });
    }
    const running = plan;
    let status;
    try {
      status = await runSteps(containerSteps(plan), args.mode, {
        onExec: (pid) => {
          updateRecord(paths, {
            status: "running",
            initPid: pid,
            initStart: processStart(pid) ?? "",
            started: new Date().toISOString(),
            exec: execContextOf(running),
          });
          observer.started?.(running.id);
        },
      });
    } catch (error) {
      if (error instanceof StepError && error.step === "mount-overlay") {
        throw new StepError(error.step, new Error(`${(error.cause as Error).message}: ${OVERLAY_HINT}`));
      }
      throw error;
    }
    if (cgroup?.wasOomKilled("signaled" in status ? status.signaled : null)) {
      // Said even with -q: it is why the command died.
      console.error(
        `gcr: the container was OOM-killed: it needed more than its --memory limit (${args.limits.memoryBytes} bytes)`,
      );
    }
    exitStatus = "exited" in status ? status.exited : 128 + status.signaled;
    return exitStatus;
  } catch (error) {
    exitStatus = error instanceof StepError ? error.exitCode : 125;
    throw error;
  } finally {
    await cgroup?.remove();
    if (bridge) {
      try {
        await detachFromBridge(bridge);
      } catch (error) {
        console.error(`gcr: ${(error as Error).message}`);
      }
    }
    try {
      if (args.remove) removeContainer({ id: plan.id, paths });
      else {
        updateRecord(paths, {
          status: "stopped",
          exitStatus: exitStatus ?? 125,
          finished: new Date().toISOString(),
          cgroups: [],
        });
      }
    } catch (error) {
      // The container's own status matters more: say what was left, and go on.
      console.error(`gcr: container ${plan.id}: ${(error as Error).message}`);
    }
  }
}

/** How to start gcr again: the ./gcr script (which says where it is), else Deno on this main module. */
function selfCommand(): string[] {
  const script = Deno.env.get("GCR_SELF");
  if (script) return [script];
  return [Deno.execPath(), "run", "-A", "--quiet", new URL(Deno.mainModule).pathname];
}

/**
 * `gcr run -d`: the container needs a parent that waits for it, records its
 * exit status and outlives this command, as conmon or containerd-shim are
 * for other runtimes. So gcr starts itself again as that monitor, in its
 * own session (closing the terminal does not end it), and returns once the
 * monitor says the command runs, printing the id, or with the error that
 * stopped it.
 */
async function detach(argv: readonly string[]): Promise<number> {
  const [program, ...prefix] = selfCommand();
  const monitor = new Deno.Command(program!, {
    args: [...prefix, "__monitor", ...argv],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const report = (await new Response(monitor.stdout).text()).trim();
  const started = report.match(/^started (\S+)$/);
  if (started) {
    monitor.unref();
    console.log(started[1]);
    return 0;
  }
  const failed = report.match(/^error (\d+) ([^]*)$/);
  if (failed) {
    console.error(`gcr: ${failed[2]}`);
    return Number(failed[1]);
  }
  const { code } = await monitor.status;
  console.error(`gcr: the container's monitor ended (exit ${code}) before the container started`);
  return 125;
}

/**
 * The detached container's monitor (see detach): stdout is a pipe to the
 * `gcr run -d` that started it; once the container is registered, stdout
 * and stderr go to its log, and the pipe carries one line: `started <id>`
 * or `error <status> <message>`.
 */
async function monitor(argv: readonly string[]): Promise<number> {
  libc().setsid();
  const report = check(libc().fcntl(1, F_DUPFD_CLOEXEC, 10), "fcntl(1, F_DUPFD_CLOEXEC)");
  const send = (line: string) => {
    const bytes = new TextEncoder().encode(line + "\n");
    libc().write(report, bytes, BigInt(bytes.length));
    libc().close(report);
  };
  let sent = false, logging = false;
  try {
    return await run(argv, {
      registered: (paths) => {
        logging = true;
        const fd = openFd(paths.log, O.WRONLY | O.CREAT | O.APPEND, 0o600);
        // Deno writes Deno.stdout, Deno.stderr and console to duplicates of
        // fds 1 and 2 it made at start-up: those must lead to the log too,
        // or the pipe to gcr run -d never reaches end-of-file.
        const stdio = [1, 2].map((n) => Deno.readLinkSync(`/proc/self/fd/${n}`));
        for (const entry of [...Deno.readDirSync("/proc/self/fd")]) {
          const n = Number(entry.name);
          if (n === report || n === fd) continue;
          try {
            if (stdio.includes(Deno.readLinkSync(`/proc/self/fd/${n}`))) check(libc().dup2(fd, n), `dup2(log, ${n})`);
          } catch (error) {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          }
        }
        libc().close(fd);
      },
      started: (id) => {
        sent = true;
        send(`started ${id}`);
      },
    });
  } catch (error) {
    const code = error instanceof StepError ? error.exitCode : 125;
    if (sent) throw error; // said in the log
    send(`error ${code} ${(error as Error).message}`);
    // gcr run -d says it; the log (when there is one yet) keeps it too.
    if (logging) Deno.stderr.writeSync(new TextEncoder().encode(`gcr: ${(error as Error).message}\n`));
    return code;
  }
}

/** gcr's version, as `--version` says it (and engines log it). */
const VERSION = "0.5.0";

/** runc's global options, before the command: where records live, where errors go. */
interface GlobalOptions {
  log?: string;
  logFormat: "text" | "json";
  systemdCgroup: boolean;
}

function parseGlobalOptions(argv: readonly string[]): { options: GlobalOptions; rest: string[] } {
  const options: GlobalOptions = { logFormat: "text", systemdCgroup: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--") || arg === "--") break;
    const at = arg.indexOf("=");
    const name = at > 0 ? arg.slice(2, at) : arg.slice(2);
    const takes = ["root", "log", "log-format", "rootless", "criu"].includes(name);
    if (!takes && !["systemd-cgroup", "debug"].includes(name)) break;
    const value = takes ? (at > 0 ? arg.slice(at + 1) : argv[++i]) : undefined;
    if (takes && value === undefined) throw new UsageError(`option --${name} needs a value`);
    if (name === "root") Deno.env.set("GCR_RUN", value!);
    else if (name === "log") options.log = value!;
    else if (name === "log-format") {
      if (value !== "json" && value !== "text") {
        throw new UsageError(`--log-format must be text or json (got ${value})`);
      }
      options.logFormat = value;
    } else if (name === "systemd-cgroup") options.systemdCgroup = true;
    else if (name === "rootless" && !["true", "false", "auto"].includes(value!)) {
      throw new UsageError(`--rootless must be true, false or auto (got ${value})`);
    }
  }
  return { options, rest: argv.slice(i) };
}

/** An error for `--log`: a JSON line as runc writes it, or plain text. */
function logError(options: GlobalOptions, message: string): void {
  if (!options.log) return;
  const line = options.logFormat === "json"
    ? JSON.stringify({ level: "error", msg: message, time: new Date().toISOString() })
    : `${new Date().toISOString()} error: ${message}`;
  try {
    Deno.writeTextFileSync(options.log, line + "\n", { append: true, create: true, mode: 0o600 });
  } catch { /* the error still goes to stderr */ }
}

/** Whether `kill` has runc's form, `kill [--all] ID SIGNAL`, rather than Docker's `kill [-s SIG] NAME…`. */
function ociKillForm(args: readonly string[]): boolean {
  if (args.some((a) => a === "--all" || a === "-a")) return true;
  const positional = args.filter((a) => !a.startsWith("-"));
  if (args.some((a) => a === "-s" || a.startsWith("--signal"))) return false;
  if (positional.length === 1) {
    // `kill ID` of a container made by `gcr create` (it has a bundle): runc's form, SIGTERM.
    try {
      return findContainer(positional[0]!).record?.bundle !== undefined;
    } catch {
      return false;
    }
  }
  if (positional.length !== 2) return false;
  try {
    parseSignal(positional[1]!);
  } catch {
    return false;
  }
  try {
    findContainer(positional[1]!);
    return false;
  } catch {
    return true;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const global = parseGlobalOptions(argv);
  const [command, ...rest] = global.rest;
  const oci = () => {
    // create's stdio is the container's: gcr's own log lines must not mix into its output.
    setQuiet(true);
    return import("./commands/oci.ts");
  };
  try {
    switch (command) {
      case "create":
        return await (await oci()).createCommand(rest, global.options.systemdCgroup);
      case "start":
        return (await oci()).startCommand(rest);
      case "state":
        return (await oci()).stateCommand(rest);
      case "delete":
        return await (await oci()).deleteCommand(rest);
      case "pause":
        return await (await oci()).pauseCommand(rest);
      case "resume":
        return (await oci()).resumeCommand(rest);
      case "features":
        return (await oci()).featuresCommand();
      case "--version":
      case "-v":
      case "version":
        console.log(`gcr version ${VERSION}\nspec: 1.2.0`);
        return 0;
      case "run":
        return await run(rest);
      case "explain": {
        if (rest[0] !== "run") throw new UsageError("explain takes a run command: gcr explain run <image> …");
        const args = parseRunArgs(rest.slice(1));
        const dir = rootfsDir(args.rootfsDir);
        const plan = await planFor(args, (image) => {
          try {
            return Deno.realPathSync(isPath(image) ? image : `${dir}/${image}`);
          } catch {
            return isPath(image) ? image : `${dir}/${image}`;
          }
        });
        // The generated /etc files as run would bind them (their host files
        // are written only by run, in the container's state folder).
        const state = containerPaths(plan.id);
        const generated = etcFiles(plan.hostname, plan.network, args.dns, "").map(([target]) => ({
          host: `${state.dir}/${target.slice("/etc/".length)}`,
          target,
          resolved: target,
          readOnly: false,
        }));
        const withVolumes = {
          ...plan,
          volumes: [...generated, ...args.volumes.map((spec) => prepareVolume(spec, plan.rootfs, undefined))],
        };
        const limited = hasLimits(args.limits)
          ? { ...withVolumes, cgroup: cgroupPreview(plan.id, args.limits) }
          : withVolumes;
        // The address is leased only by run: explain shows where it would go.
        const bridged: ContainerPlan = args.network === "bridge"
          ? {
            ...limited,
            bridge: {
              id: plan.id,
              nat: (await import("./net/bridge.ts")).natBackend(),
              lease: {
                containerId: plan.id,
                address: "<address>",
                cidr: "<address>/16",
                gateway: "10.88.0.1",
                pid: 0,
                startTime: 0,
              },
              prefixLength: 16,
              hostVeth: `veth${plan.id.slice(0, 8)}`,
              ports: args.publish,
            },
          }
          : limited;
        console.log(explain(containerSteps(bridged)));
        return 0;
      }
      case "pull": {
        const { parsePullArgs, pullCommand } = await import("./commands/pull.ts");
        return await pullCommand(parsePullArgs(rest, "pull"));
      }
      case "__monitor":
        return await monitor(rest);
      case "ps":
        // runc's `ps ID` lists a container's processes; Docker's `ps` lists containers.
        if (rest.some((a) => !a.startsWith("-"))) return (await oci()).ociPsCommand(rest);
        return psCommand(rest);
      case "exec": {
        if (rest.some((a) => /^(--process|-p)(=|$)/.test(a))) return await (await oci()).ociExecCommand(rest);
        const { execCommand } = await import("./commands/exec.ts");
        return await execCommand(rest);
      }
      case "logs":
        return await logsCommand(rest);
      case "stop":
        return await stopCommand(rest);
      case "kill":
        if (ociKillForm(rest)) return (await oci()).ociKillCommand(rest);
        return killCommand(rest);
      case "inspect":
        return inspectCommand(rest);
      case "rm":
        return await rmCommand(rest);
      case "prune":
        return await pruneCommand(rest);
      case "images": {
        const { imagesCommand } = await import("./commands/pull.ts");
        return await imagesCommand(rest);
      }
      case "help":
      case "-h":
      case "--help":
        console.log(USAGE);
        return 0;
      case undefined:
        throw new UsageError("missing command");
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof Error) logError(global.options, error.message);
    if (error instanceof UsageError) {
      console.error(`gcr: ${error.message} (see: gcr help)`);
      return 125;
    }
    if (error instanceof StepError) {
      console.error(`gcr: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof Error && !(error instanceof TypeError || error instanceof RangeError)) {
      console.error(`gcr: ${error.message}`);
      return 125;
    }
    throw error;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
