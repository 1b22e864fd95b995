/**
 * The OCI runtime command line (runtime-spec "Runtime and Lifecycle", with
 * runc's flags), so that engines such as podman can drive gcr:
 *
 *   gcr [--root DIR] [--log FILE] [--log-format json] create --bundle B --pid-file F [--console-socket S] ID
 *   gcr start ID; gcr state ID; gcr kill [--all] ID [SIGNAL]; gcr delete [--force] ID
 *   gcr exec --process P.json [--detach] [--pid-file F] [--console-socket S] ID
 *   gcr pause ID; gcr resume ID; gcr ps ID; gcr features
 *
 * `create` runs every step but the last: the container's process waits,
 * signals already reset, reading a FIFO in the runtime folder; `start`
 * writes one byte to it, and the process execs. The container's stdio is
 * the stdio of `create`.
 *
 * @module
 */
import {
  type ContainerCgroup,
  createContainerCgroup,
  freeze,
  openContainerCgroup,
  thaw,
} from "../cgroup/container_cgroup.ts";
import { type CgroupHost, CgroupUnavailableError, detectCgroups } from "../cgroup/hierarchies.ts";
import { type DeviceRule, resourcesFromOci } from "../cgroup/limits.ts";
import { showCgroupOp } from "../cgroup/ops.ts";
import { planContainerCgroup } from "../cgroup/plan.ts";
import { CHAIN_FDS, chainLayout } from "../ffi/chain.ts";
import { AF_UNIX, AT_FDCWD, ERRNO, F_GETFD, LAYOUT, O, O_CLOEXEC, S_IFIFO, SOCK_STREAM } from "../ffi/constants.ts";
import { check, lastErrno, SyscallError } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { cString, moveFdAbove, openFd } from "../ffi/fds.ts";
import { writeFileAtomically } from "../host/files.ts";
import { parseSignal } from "./lifecycle.ts";
import { runSteps } from "../runner/runner.ts";
import { CAPABILITIES } from "../security/capabilities.ts";
import {
  containerPaths,
  type ContainerRecord,
  currentStatus,
  execContext,
  findContainer,
  type FoundContainer,
  processStart,
  readRecord,
  recordedSeccomp,
  registerContainer,
  removeContainer,
  removeTree,
  sameProcess,
  updateRecord,
} from "../state/state.ts";
import { pidNamespaceVia } from "../steps/join_namespaces.ts";
import { execSteps } from "../steps/pipeline.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { ociSteps, securityPlan } from "../oci/plan.ts";
import { type NamespaceType, parseSpec, readSpec } from "../oci/spec.ts";

const OCI_VERSION = "1.2.0";

/** The device cgroup rules runc adds after config.json's: mknod of any node, and the standard devices. */
const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [
  { allow: true, type: "c", access: "m" },
  { allow: true, type: "b", access: "m" },
  ...[[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2], [10, 200]].map(([major, minor]) => ({
    allow: true,
    type: "c" as const,
    major: major!,
    minor: minor!,
    access: "rwm",
  })),
  { allow: true, type: "c", major: 136, access: "rwm" },
];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function oneId(rest: readonly string[], command: string): string {
  if (rest.length !== 1) throw new UsageError(`gcr ${command} takes one container id (got ${rest.length})`);
  return rest[0]!;
}

/** A connected unix stream socket to `path` (the engine's console socket). */
function connectUnix(path: string): number {
  const { sockaddr_un } = LAYOUT;
  const name = new TextEncoder().encode(path);
  if (name.length >= sockaddr_un.size - sockaddr_un.sun_path) throw new Error(`console socket path too long: ${path}`);
  const address = new Uint8Array(sockaddr_un.size);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(name, sockaddr_un.sun_path);
  const fd = check(libc().socket(AF_UNIX, SOCK_STREAM | O_CLOEXEC, 0), "socket(AF_UNIX)");
  if (libc().connect(fd, address, sockaddr_un.size) === -1) {
    const errno = lastErrno();
    libc().close(fd);
    throw new SyscallError(`connect(${path})`, errno);
  }
  return fd;
}

/** The /proc/<pid>/ns names of config.json's namespace types. */
const NS_FILE: Record<NamespaceType, string> = {
  user: "user",
  mount: "mnt",
  pid: "pid",
  uts: "uts",
  ipc: "ipc",
  network: "net",
  cgroup: "cgroup",
};

/** The v1 hierarchies a `cgroup` mount shows: the container's own folder in each, else gcr's. */
function cgroupHierarchies(host: CgroupHost, cgroup: ContainerCgroup | undefined): { name: string; dir: string }[] {
  if (host.version === 2) return [];
  return host.hierarchies.map((h) => ({
    name: h.mount.slice(h.mount.lastIndexOf("/") + 1),
    dir: cgroup?.paths.find((path) => path.startsWith(h.mount + "/")) ?? h.dir,
  }));
}

/** `gcr create`: the container, set up and waiting for `gcr start`. */
export async function createCommand(args: readonly string[], systemdCgroup: boolean): Promise<number> {
  const { flags, rest } = parseFlags(
    args,
    {
      bundle: "value",
      "pid-file": "value",
      "console-socket": "value",
      "no-pivot": "bool",
      "preserve-fds": "value",
      "no-new-keyring": "bool",
    },
    { b: "bundle" },
    "create",
  );
  const id = oneId(rest, "create");
  const preserveText = flags.get("preserve-fds") ?? "0";
  if (!/^\d{1,3}$/.test(preserveText)) {
    throw new UsageError(`gcr create: --preserve-fds takes a count (got ${preserveText})`);
  }
  const preserved = Number(preserveText);
  for (let fd = 3; fd < 3 + preserved; fd++) {
    if (libc().fcntl(fd, F_GETFD, 0) === -1) {
      throw new Error(`--preserve-fds ${preserved}: descriptor ${fd} is not open`);
    }
  }
  const layout = chainLayout(preserved);
  // gcr's own descriptors for the child go above every number its prologue writes to.
  const inheritable = (fd: number) => moveFdAbove(fd, layout.firstFree + 16);
  const bundle = flags.get("bundle") ?? Deno.cwd();
  const spec = readSpec(bundle);
  const raw = JSON.parse(Deno.readTextFileSync(`${spec.bundle}/config.json`)) as { linux?: { resources?: unknown } };
  if (systemdCgroup && spec.linux.cgroupsPath?.includes(":")) {
    throw new Error(
      `--systemd-cgroup: gcr manages cgroups itself (cgroupfs); ${spec.linux.cgroupsPath} is a systemd unit path`,
    );
  }
  const paths = containerPaths(id);
  const record: ContainerRecord = {
    id,
    image: spec.bundle,
    rootfs: spec.root.path,
    command: [...spec.process.args],
    created: new Date().toISOString(),
    pid: Deno.pid,
    pidStart: processStart(Deno.pid) ?? "",
    status: "creating",
    bundle: spec.bundle,
    annotations: { ...spec.annotations },
  };
  registerContainer(paths, record);
  const open: number[] = [];
  let cgroup: ContainerCgroup | undefined;
  let created = false;
  try {
    if (libc().mknodat(AT_FDCWD, cString(paths.startFifo), S_IFIFO | 0o600, 0n) === -1) {
      throw new SyscallError(`mknod(${paths.startFifo}, S_IFIFO)`, lastErrno());
    }
    // Read and write: the child holds both ends, so its read blocks until
    // gcr start writes (never end-of-file), and gcr start's non-blocking
    // open finds a reader exactly while the child lives.
    const fifo = inheritable(openFd(paths.startFifo, O.RDWR));
    open.push(fifo);
    const devNull = inheritable(openFd("/dev/null", O.WRONLY));
    open.push(devNull);
    const socketPath = flags.get("console-socket");
    const consoleSocket = socketPath ? inheritable(connectUnix(socketPath)) : undefined;
    if (consoleSocket !== undefined) open.push(consoleSocket);

    const host = detectCgroups();
    const asked = resourcesFromOci(raw.linux?.resources ?? {});
    // As runc does: after config.json's device rules, the devices every
    // container gets (the /dev gcr makes) stay usable, whatever came before.
    const limits = asked.devices?.length ? { ...asked, devices: [...asked.devices, ...DEFAULT_DEVICE_RULES] } : asked;
    const cgroupOptions = {
      ...(spec.linux.cgroupsPath ? { path: spec.linux.cgroupsPath } : {}),
      controllers: ["memory", "cpu", "cpuacct", "pids", "devices", "freezer", "cpuset"],
    };
    try {
      // Recorded before they exist: a create killed while making them leaves
      // folders that delete --force then finds (a missing one is no error).
      updateRecord(paths, { cgroups: planContainerCgroup(id, limits, cgroupOptions).dirs });
      cgroup = createContainerCgroup(id, limits, cgroupOptions);
    } catch (error) {
      const limited = Object.values(limits).some((v) => v !== undefined && !(Array.isArray(v) && v.length === 0));
      if (!(error instanceof CgroupUnavailableError) || limited) throw error;
    }
    if (cgroup) updateRecord(paths, { cgroups: [...cgroup.paths, ...cgroup.created] });
    const security = securityPlan(spec);
    const steps = ociSteps(spec, {
      preserved,
      startFifo: fifo,
      devNull,
      ...(consoleSocket !== undefined ? { consoleSocket } : {}),
    }, {
      noPivot: flags.has("no-pivot"),
      ...(cgroup
        ? { cgroup: { setup: cgroup.ops.map(showCgroupOp), procs: cgroup.paths.map((p) => `${p}/cgroup.procs`) } }
        : {}),
      cgroupHierarchies: cgroupHierarchies(host, cgroup),
      cgroupVersion: host.version === 2 ? 2 : 1,
    }, security);
    const inherit = [
      { from: fifo, to: layout.firstFree },
      { from: devNull, to: layout.firstFree + 1 },
      ...(consoleSocket !== undefined ? [{ from: consoleSocket, to: layout.firstFree + 2 }] : []),
    ];
    const outcome = await runSteps(steps, "run", { inherit, detach: true, layout });
    if (!("running" in outcome)) throw new Error("the container's process ended before it reached the start gate");
    const pid = outcome.running;
    const exec = execContext({
      env: spec.process.env,
      workdir: spec.process.cwd,
      ids: {
        uid: spec.linux.uidMappings,
        gid: spec.linux.gidMappings,
        via: "direct",
        setgroups: "allow",
        writer: Deno.uid() === 0 ? "root" : "user",
      },
      security,
      cgroupProcs: cgroup ? cgroup.paths.map((p) => `${p}/cgroup.procs`) : [],
      namespaces: spec.linux.namespaces.map((n) => NS_FILE[n.type]),
    });
    updateRecord(paths, { status: "created", initPid: pid, initStart: processStart(pid) ?? "", exec });
    const pidFile = flags.get("pid-file");
    if (pidFile) writeFileAtomically(pidFile, String(pid), 0o644);
    created = true;
    return 0;
  } finally {
    for (const fd of open) libc().close(fd);
    if (!created) {
      await cgroup?.remove();
      removeTree(paths.run);
    }
  }
}

function recorded(id: string): FoundContainer & { record: ContainerRecord } {
  const found = findContainer(id);
  if (!found.record) throw new Error(`container ${id} does not exist`);
  return found as FoundContainer & { record: ContainerRecord };
}

/** `gcr start ID`: opens the start gate of a created container. */
export function startCommand(args: readonly string[]): number {
  const { rest } = parseFlags(args, {}, {}, "start");
  const found = recorded(oneId(rest, "start"));
  const status = currentStatus(found.record);
  if (status !== "created") throw new Error(`cannot start container ${found.id}: it is ${status}, not created`);
  const fd = libc().openat(AT_FDCWD, cString(found.paths.startFifo), O.WRONLY | O.NONBLOCK | O_CLOEXEC, 0);
  if (fd === -1) {
    const errno = lastErrno();
    if (errno === ERRNO.ENXIO) throw new Error(`cannot start container ${found.id}: its process is gone`);
    throw new SyscallError(`open(${found.paths.startFifo})`, errno);
  }
  try {
    check(Number(libc().write(fd, new Uint8Array([0]), 1n)), "write(start FIFO)");
  } finally {
    libc().close(fd);
  }
  Deno.removeSync(found.paths.startFifo);
  updateRecord(found.paths, { status: "running", started: new Date().toISOString() });
  return 0;
}

/** `gcr state ID`: the runtime-spec state as JSON. */
export function stateCommand(args: readonly string[]): number {
  const { rest } = parseFlags(args, {}, {}, "state");
  const found = recorded(oneId(rest, "state"));
  const status = currentStatus(found.record);
  const alive = status !== "stopped";
  console.log(JSON.stringify(
    {
      ociVersion: OCI_VERSION,
      id: found.id,
      status,
      pid: alive ? found.record.initPid ?? 0 : 0,
      bundle: found.record.bundle ?? "",
      rootfs: found.record.rootfs,
      created: found.record.created,
      owner: "",
      annotations: found.record.annotations ?? {},
    },
    null,
    2,
  ));
  return 0;
}

/** The container's processes (host pids): its cgroup's, or just its first process. */
function containerPids(record: ContainerRecord): number[] {
  const procs = record.exec?.cgroupProcs ?? [];
  for (const file of procs) {
    try {
      return Deno.readTextFileSync(file).split("\n").filter(Boolean).map(Number);
    } catch { /* try the next hierarchy */ }
  }
  return sameProcess(record.initPid, record.initStart) ? [record.initPid!] : [];
}

/** `gcr kill [--all] ID [SIGNAL]` (runc's form; SIGTERM by default). */
export function ociKillCommand(args: readonly string[]): number {
  const { flags, rest } = parseFlags(args, { all: "bool" }, { a: "all" }, "kill");
  if (rest.length < 1 || rest.length > 2) throw new UsageError("gcr kill takes an id and an optional signal");
  const signal = parseSignal(rest[1] ?? "TERM");
  const found = recorded(rest[0]!);
  if (currentStatus(found.record) === "stopped") throw new Error(`container ${found.id} is not running`);
  const targets = flags.get("all") === "true" ? containerPids(found.record) : [found.record.initPid!];
  for (const pid of targets) {
    try {
      Deno.kill(pid, signal as unknown as Deno.Signal);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return 0;
}

/** `gcr delete [--force] ID`: removes a stopped container (kills it first with --force). */
export async function deleteCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { force: "bool" }, { f: "force" }, "delete");
  const id = oneId(rest, "delete");
  let found: FoundContainer;
  try {
    found = findContainer(id);
  } catch (error) {
    // As runc: --force of a container that does not exist (its create failed) succeeds.
    if (flags.get("force") === "true") return 0;
    throw error;
  }
  const record = found.record ?? readRecord(found.paths);
  if (record && currentStatus(record) !== "stopped") {
    if (flags.get("force") !== "true") {
      throw new Error(`cannot delete container ${found.id}: it is ${currentStatus(record)} (use --force)`);
    }
    for (const pid of containerPids(record)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    const deadline = performance.now() + 10_000;
    while (currentStatus(record) !== "stopped") {
      if (performance.now() > deadline) throw new Error(`container ${found.id} did not die after SIGKILL`);
      await sleep(10);
    }
  }
  if (record && ownCgroupFolders(record).length) await ownCgroup(record).remove();
  removeContainer({ ...found, ...(record ? { record: { ...record, cgroups: [] } } : {}) });
  return 0;
}

/** The container `id` names, which must be `wanted` and have a cgroup (pause and resume freeze it). */
function freezerOf(id: string, wanted: "running" | "paused"): FoundContainer & { record: ContainerRecord } {
  const found = recorded(id);
  const status = currentStatus(found.record);
  if (status !== wanted) throw new Error(`container ${found.id} is ${status}, not ${wanted}`);
  if (!found.record.cgroups?.length) throw new Error(`container ${found.id} has no cgroup to freeze`);
  return found;
}

/**
 * The container's own cgroup folders: the deepest of those recorded (the
 * others are the parents gcr made for its cgroupsPath, removed with it when
 * empty).
 */
function ownCgroupFolders(record: ContainerRecord): string[] {
  const cgroups = record.cgroups ?? [];
  return cgroups.filter((dir) => !cgroups.some((other) => other !== dir && other.startsWith(dir + "/")));
}

function ownCgroup(record: ContainerRecord): ContainerCgroup {
  const own = ownCgroupFolders(record);
  return openContainerCgroup(own, { created: (record.cgroups ?? []).filter((dir) => !own.includes(dir)) });
}

/** `gcr pause ID`: freezes every process of the container (cgroup freezer). */
export async function pauseCommand(args: readonly string[]): Promise<number> {
  const found = freezerOf(oneId(parseFlags(args, {}, {}, "pause").rest, "pause"), "running");
  await freeze(ownCgroup(found.record));
  updateRecord(found.paths, { status: "paused" });
  return 0;
}

/** `gcr resume ID`: thaws a paused container. */
export function resumeCommand(args: readonly string[]): number {
  const found = freezerOf(oneId(parseFlags(args, {}, {}, "resume").rest, "resume"), "paused");
  thaw(ownCgroup(found.record));
  updateRecord(found.paths, { status: "running" });
  return 0;
}

/** `gcr ps [--format table|json] ID`: the container's processes, as host pids. */
export function ociPsCommand(args: readonly string[]): number {
  const { flags, rest } = parseFlags(args, { format: "value" }, { f: "format" }, "ps");
  const found = recorded(oneId(rest, "ps"));
  const pids = containerPids(found.record);
  if ((flags.get("format") ?? "table") === "json") console.log(JSON.stringify(pids));
  else console.log(["PID", ...pids.map(String)].join("\n"));
  return 0;
}

/** `gcr features`: what this runtime supports (runtime-spec features.md). */
export function featuresCommand(): number {
  console.log(JSON.stringify(
    {
      ociVersionMin: "1.0.0",
      ociVersionMax: OCI_VERSION,
      hooks: [],
      mountOptions: [
        "ro",
        "rw",
        "nosuid",
        "suid",
        "nodev",
        "dev",
        "noexec",
        "exec",
        "sync",
        "async",
        "dirsync",
        "remount",
        "mand",
        "nomand",
        "atime",
        "noatime",
        "diratime",
        "nodiratime",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "bind",
        "rbind",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
      ],
      linux: {
        namespaces: ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
        capabilities: Object.keys(CAPABILITIES).map((name) => name.startsWith("CAP_") ? name : `CAP_${name}`),
        cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
        seccomp: {
          enabled: true,
          actions: [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP",
          ],
          operators: [
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_LE",
            "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NE",
          ],
          archs: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        },
        apparmor: { enabled: false },
        selinux: { enabled: false },
      },
      annotations: {},
    },
    null,
    2,
  ));
  return 0;
}

/** `gcr exec --process P.json [--detach] [--pid-file F] [--console-socket S] ID`: runc's form of exec. */
export async function ociExecCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(
    args,
    {
      process: "value",
      detach: "bool",
      "pid-file": "value",
      "console-socket": "value",
      tty: "bool",
      cwd: "value",
      env: "value",
      "preserve-fds": "value",
    },
    { p: "process", d: "detach", t: "tty", e: "env" },
    "exec",
  );
  const [id, ...command] = rest;
  if (id === undefined) throw new UsageError("gcr exec: missing container id");
  const found = recorded(id);
  if (currentStatus(found.record) !== "running") throw new Error(`container ${found.id} is not running`);
  const context = found.record.exec;
  if (!context) throw new Error(`container ${found.id} has no record of how to enter it`);
  const processFile = flags.get("process");
  const processJson = processFile
    ? JSON.parse(Deno.readTextFileSync(processFile))
    : { args: command, cwd: flags.get("cwd") ?? context.workdir, env: context.env, user: { uid: 0, gid: 0 } };
  if (!processFile && command.length === 0) throw new UsageError("gcr exec: give --process or a command");
  // The process object is read by the same code as config.json's.
  const spec = parseSpec(
    { ociVersion: OCI_VERSION, root: { path: "/" }, process: processJson },
    found.record.bundle ?? "/",
  );
  const planned = securityPlan({ process: spec.process, linux: { ...spec.linux, seccomp: undefined } }, "process");
  // As runc: a process without capabilities gets the container's (not every capability).
  const security = spec.process.capabilities ? planned : { ...planned, capabilities: new Set(context.capabilities) };
  const seccomp = recordedSeccomp(context);
  const socketPath = flags.get("console-socket");
  if (spec.process.terminal && !socketPath) throw new UsageError("gcr exec: process.terminal needs --console-socket");
  const socket = socketPath ? moveFdAbove(connectUnix(socketPath), 16) : undefined;
  const detach = flags.get("detach") === "true";
  try {
    const outcome = await runSteps(
      execSteps({
        pid: found.record.initPid!,
        namespaces: context.namespaces,
        cgroupProcs: context.cgroupProcs,
        argv: spec.process.args,
        env: spec.process.env,
        workdir: spec.process.cwd,
        ids: context.ids,
        security: { ...security, ...(seccomp ? { seccomp } : {}) },
        dieWithParent: !detach,
        pidVia: pidNamespaceVia(context.namespaces, Deno.uid()),
        ...(socket !== undefined && spec.process.terminal ? { consoleSocket: CHAIN_FDS.firstFree } : {}),
      }),
      "run",
      {
        detach,
        ...(socket !== undefined ? { inherit: [{ from: socket, to: CHAIN_FDS.firstFree }] } : {}),
        onExec: (pid) => {
          const pidFile = flags.get("pid-file");
          if (pidFile) writeFileAtomically(pidFile, String(pid), 0o644);
        },
      },
    );
    if ("running" in outcome) return 0;
    return "exited" in outcome ? outcome.exited : 128 + outcome.signaled;
  } finally {
    if (socket !== undefined) libc().close(socket);
  }
}
