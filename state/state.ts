/**
 * Containers' state on the host, in two places:
 *
 *   <runtime dir>/<id>/{container.json,log,start.fifo}   what runs: the record
 *       (status, pids, exit status), the output of a detached container, the
 *       OCI start gate. /run/gcr as root, $XDG_RUNTIME_DIR/gcr rootless.
 *   <state dir>/containers/<id>/{upper,work,merged,…}     what the container
 *       wrote (the overlay's upper folder) and its generated /etc files.
 *       /var/lib/gcr as root, $XDG_DATA_HOME/gcr rootless.
 *
 * `$GCR_STATE` overrides the state directory (and then the runtime directory
 * is its `run` folder); `--root` or `$GCR_RUN` the runtime directory.
 *
 * @module
 */
import { MOUNT_POINTS } from "../image/rootfs.ts";
import { exists, writeFileAtomically } from "../host/files.ts";
import type { IdPlan, SecurityPlan } from "../steps/plan.ts";
import type { BridgeAttachment } from "../net/bridge.ts";

/** Where a container is in its life, as `gcr ps` and `gcr state` say it. */
export type ContainerStatus = "creating" | "created" | "running" | "paused" | "stopped";

/**
 * What `gcr exec` needs to enter a running container and hold its process
 * to the same rules as the first one: gcr cannot ask the container, so the
 * run that made it writes this down.
 */
export interface ExecContext {
  readonly env: readonly string[];
  /** The user namespace's maps, which -u is checked against. */
  readonly ids: IdPlan;
  readonly workdir: string;
  /** Capability numbers kept. */
  readonly capabilities: readonly number[];
  readonly noNewPrivs: boolean;
  /** The seccomp BPF program, base64; absent: unconfined. */
  readonly seccomp?: string;
  readonly user?: {
    readonly uid: number;
    readonly gid: number;
    readonly groups: readonly number[];
    readonly home: string;
  };
  /** The container's cgroup.procs files, when it has a cgroup. */
  readonly cgroupProcs: readonly string[];
  /** Namespaces the container has of its own (user, mnt, pid, uts, ipc, net, cgroup). */
  readonly namespaces: readonly string[];
}

/** What the process was given, recorded as an ExecContext: the seccomp program in base64. */
export function execContext(
  given: Omit<ExecContext, "capabilities" | "noNewPrivs" | "seccomp" | "user"> & { readonly security: SecurityPlan },
): ExecContext {
  const { security, ...rest } = given;
  return {
    ...rest,
    capabilities: [...security.capabilities],
    noNewPrivs: security.noNewPrivs,
    // Native base64: a 10 KB filter through String.fromCharCode and btoa took ~1.5 ms of every start.
    ...(security.seccomp ? { seccomp: security.seccomp.toBase64() } : {}),
    ...(security.user ? { user: security.user } : {}),
  };
}

/** The seccomp program an ExecContext recorded, or undefined (unconfined). */
export function recordedSeccomp(context: ExecContext): Uint8Array | undefined {
  return context.seccomp ? Uint8Array.fromBase64(context.seccomp) : undefined;
}

/** What a container's record (`<runtime dir>/<id>/container.json`) holds. */
export interface ContainerRecord {
  id: string;
  /** `--name`: unique among the containers in the runtime directory. */
  name?: string;
  image: string;
  /** The image folder (overlay's lower layer), or an OCI bundle's root. */
  rootfs: string;
  command: string[];
  /** ISO 8601. */
  created: string;
  /**
   * The gcr process that runs the container and waits for it (the foreground
   * gcr, or the monitor of a detached one) and its start time (against pid
   * reuse); for OCI `create`, the creating gcr, which exits.
   */
  pid: number;
  pidStart: string;
  /** As last written; what it is now also depends on whether its processes live (`currentStatus`). */
  status?: ContainerStatus;
  /** The container's first process, as a host pid, and its start time. */
  initPid?: number;
  initStart?: string;
  started?: string;
  finished?: string;
  /** Set when the container has exited: its exit status as gcr reports it. */
  exitStatus?: number;
  /** `-d`: its output is in `log`. */
  detached?: boolean;
  /** `--rm`: everything goes when it exits. */
  remove?: boolean;
  exec?: ExecContext;
  /** OCI: the bundle folder and config.json's annotations. */
  bundle?: string;
  annotations?: Record<string, string>;
  /** The container's cgroup folders, removed with it. */
  cgroups?: string[];
  /** --net bridge: its address, veth and ports, undone with it. */
  network?: BridgeAttachment;
}

/** The state directory: $GCR_STATE, else /var/lib/gcr (root) or $XDG_DATA_HOME/gcr. */
export function stateDir(): string {
  const explicit = Deno.env.get("GCR_STATE");
  if (explicit) return explicit.startsWith("/") ? explicit : `${Deno.cwd()}/${explicit}`;
  if (Deno.uid() === 0) return "/var/lib/gcr";
  const data = Deno.env.get("XDG_DATA_HOME") || `${Deno.env.get("HOME") ?? "/"}/.local/share`;
  return `${data.replace(/\/+$/, "")}/gcr`;
}

/**
 * The runtime directory, where running containers' records live: `--root`
 * (which sets $GCR_RUN), else `$GCR_STATE/run` when a state directory is
 * given (tests), else /run/gcr (root) or $XDG_RUNTIME_DIR/gcr. It is on a
 * tmpfs, as runc's /run/runc: after a reboot no container runs.
 */
export function runtimeDir(): string {
  const explicit = Deno.env.get("GCR_RUN");
  if (explicit) return explicit.startsWith("/") ? explicit : `${Deno.cwd()}/${explicit}`;
  if (Deno.env.get("GCR_STATE")) return `${stateDir()}/run`;
  if (Deno.uid() === 0) return "/run/gcr";
  const runtime = Deno.env.get("XDG_RUNTIME_DIR");
  return runtime ? `${runtime.replace(/\/+$/, "")}/gcr` : `/tmp/gcr-${Deno.uid()}`;
}

/** Where one container's state lives. */
export interface ContainerPaths {
  /** The container's data: the overlay's folders (absent for OCI bundles). */
  dir: string;
  upper: string;
  work: string;
  merged: string;
  /** The runtime folder: record, log, the start FIFO. */
  run: string;
  record: string;
  log: string;
  /** OCI `create` leaves the container reading it; `start` writes one byte. */
  startFifo: string;
}

/** Container ids and names: what runc accepts, and never a path. */
export const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

export function containerPaths(id: string, state = stateDir(), runtime = runtimeDir()): ContainerPaths {
  if (!CONTAINER_ID.test(id)) throw new Error(`invalid container id ${JSON.stringify(id)}`);
  const dir = `${state}/containers/${id}`;
  const run = `${runtime}/${id}`;
  return {
    dir,
    upper: `${dir}/upper`,
    work: `${dir}/work`,
    merged: `${dir}/merged`,
    run,
    record: `${run}/container.json`,
    log: `${run}/log`,
    startFifo: `${run}/start.fifo`,
  };
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined when there is no such process. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // A zombie has exited: only its exit status waits for its parent.
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` is still the process that had start time `start`. */
export function sameProcess(pid: number | undefined, start: string | undefined): boolean {
  return pid !== undefined && start !== undefined && pid > 0 && processStart(pid) === start;
}

/**
 * Writes `container.json` atomically: a temporary file renamed over it, so a
 * gcr killed at any moment leaves the old record or the new one.
 */
export function writeRecord(paths: ContainerPaths, record: ContainerRecord): void {
  writeFileAtomically(paths.record, JSON.stringify(record, null, 2) + "\n", 0o600);
}

/** Reads the record, applies `change` and writes it back (atomically); no-op when it is gone. */
export function updateRecord(paths: ContainerPaths, change: Partial<ContainerRecord>): ContainerRecord | undefined {
  const record = readRecord(paths);
  if (!record) return undefined;
  const updated = { ...record, ...change };
  writeRecord(paths, updated);
  return updated;
}

export function readRecord(paths: ContainerPaths): ContainerRecord | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(paths.record)) as ContainerRecord;
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` holding the runtime directory's lock: names are checked and
 * claimed under it, so two gcr starting with the same --name cannot both win.
 */
export function withRuntimeLock<T>(fn: () => T, runtime = runtimeDir()): T {
  Deno.mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const lock = Deno.openSync(`${runtime}/.lock`, { read: true, write: true, create: true, mode: 0o600 });
  try {
    lock.lockSync(true);
    return fn();
  } finally {
    lock.close();
  }
}

/**
 * Claims the runtime folder (and the name) and writes the first record. Fails
 * when the id or the name is taken, leaving nothing behind.
 */
export function registerContainer(paths: ContainerPaths, record: ContainerRecord): void {
  withRuntimeLock(() => {
    if (record.name !== undefined) {
      const holder = listContainers().find((c) => c.record?.name === record.name);
      if (holder) {
        throw new Error(`the name ${JSON.stringify(record.name)} is taken by container ${holder.id} (gcr rm it first)`);
      }
    }
    try {
      Deno.mkdirSync(paths.run, { mode: 0o700 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) throw new Error(`container ${record.id} already exists`);
      throw error;
    }
    writeRecord(paths, record);
  });
}

/**
 * Makes the container's data folders (mode 0700: what the container wrote is
 * its own) and the mount points the image lacks, in `upper`, never in the
 * image; and registers the container.
 */
export function createContainerState(paths: ContainerPaths, record: ContainerRecord): void {
  registerContainer(paths, record);
  try {
    Deno.mkdirSync(paths.dir.slice(0, paths.dir.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    Deno.mkdirSync(paths.dir, { mode: 0o700 });
    for (const dir of [paths.upper, paths.work, paths.merged]) Deno.mkdirSync(dir, { mode: 0o755 });
    for (const name of MOUNT_POINTS) {
      let present = false;
      try {
        Deno.lstatSync(`${record.rootfs}/${name}`);
        present = true;
      } catch { /* missing in the image */ }
      if (!present) Deno.mkdirSync(`${paths.upper}/${name}`, { mode: 0o755 });
    }
  } catch (error) {
    removeTree(paths.run);
    throw error;
  }
}

/**
 * What the container is now: the record says what gcr last wrote; a
 * container whose processes died while no gcr watched (killed behind its
 * back, a gcr killed mid-start) is stopped.
 */
export function currentStatus(record: ContainerRecord): ContainerStatus {
  const status = record.status ?? (record.exitStatus === undefined ? "running" : "stopped");
  if (status === "stopped") return status;
  if (status === "creating") return sameProcess(record.pid, record.pidStart) ? "creating" : "stopped";
  if (record.initPid !== undefined) return sameProcess(record.initPid, record.initStart) ? status : "stopped";
  return sameProcess(record.pid, record.pidStart) ? status : "stopped";
}

/** Whether the container may still run: anything but stopped. */
export function isRunning(record: ContainerRecord): boolean {
  return currentStatus(record) !== "stopped";
}

/**
 * Removes a tree that may hold folders the container made unreadable to
 * its owner (overlay's work/work is mode 000): each folder is opened up
 * before it is emptied. Rootless, files owned by the container's other ids
 * (subordinate uids) cannot be removed by the caller: those are removed in a
 * user namespace with the same mapping (`unshare --map-auto`).
 */
export function removeTree(path: string): void {
  // One call first (~15 fewer calls for a container's folders with --rm): it
  // fails only on a folder closed to its owner, which the walk opens up.
  try {
    Deno.removeSync(path, { recursive: true });
    return;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !exists(path)) return;
  }
  const walk = (dir: string) => {
    try {
      Deno.chmodSync(dir, 0o700);
    } catch { /* not ours: removal below may still work */ }
    for (const entry of Deno.readDirSync(dir)) {
      const child = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(child);
      else Deno.removeSync(child);
    }
    Deno.removeSync(dir);
  };
  try {
    walk(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !exists(path)) return;
    if (Deno.uid() === 0) throw error;
    const result = new Deno.Command("unshare", {
      args: ["--map-root-user", "--map-auto", "rm", "-rf", "--", path],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!result.success || exists(path)) {
      throw new Error(`cannot remove ${path}: ${(error as Error).message}`);
    }
  }
}

/** A container as found in the runtime directory (or only as data left in the state directory). */
export interface FoundContainer {
  id: string;
  paths: ContainerPaths;
  record?: ContainerRecord;
}

/**
 * Every container: those with a runtime folder, then data folders without one
 * (left by a reboot, which empties /run, or by a gcr killed while it made them).
 */
export function listContainers(state = stateDir(), runtime = runtimeDir()): FoundContainer[] {
  const folders = (dir: string) => {
    try {
      return [...Deno.readDirSync(dir)].filter((e) => e.isDirectory && CONTAINER_ID.test(e.name)).map((e) => e.name);
    } catch {
      return [];
    }
  };
  const running = folders(runtime);
  const dataOnly = folders(`${state}/containers`).filter((id) => !running.includes(id));
  return [...running, ...dataOnly].sort().map((id) => {
    const paths = containerPaths(id, state, runtime);
    const record = readRecord(paths);
    return record ? { id, paths, record } : { id, paths };
  });
}

/** The one container `ref` names: a name, a whole id, or an id prefix of at least 3 characters. */
export function findContainer(ref: string, all = listContainers()): FoundContainer {
  const byName = all.filter((c) => c.record?.name === ref);
  if (byName.length === 1) return byName[0]!;
  const exact = all.filter((c) => c.id === ref);
  if (exact.length === 1) return exact[0]!;
  const prefixed = ref.length >= 3 ? all.filter((c) => c.id.startsWith(ref)) : [];
  if (prefixed.length === 1) return prefixed[0]!;
  throw new Error(`${prefixed.length > 1 ? "ambiguous" : "no such"} container ${JSON.stringify(ref)}`);
}

/** Removes what a stopped container left: its cgroups, data folder and runtime folder. */
export function removeContainer(found: FoundContainer): void {
  for (const cgroup of found.record?.cgroups ?? []) {
    try {
      Deno.removeSync(cgroup);
    } catch { /* gone already, or not ours any more */ }
  }
  removeTree(found.paths.dir);
  removeTree(found.paths.run);
}
