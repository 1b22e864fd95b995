/**
 * A container's record (`<runtime dir>/<id>/container.json`): what it is,
 * who runs it, how it ended, and what `gcr exec` needs to enter it. Written
 * whole (a temporary file renamed over the old one), under the runtime
 * directory's lock where a name is claimed.
 *
 * @module
 */
import type { Hook } from "../steps/hook_process.ts";
import { pathInfo, writeFileAtomically } from "../host/files.ts";
import {
  type BridgeAttachment,
  type CapabilitySets,
  type IdPlan,
  type SecurityPlan,
  singleSet,
} from "../steps/plan.ts";
import type { ContainerPaths } from "./paths.ts";

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
  /**
   * The five capability sets, as numbers. A record of a gcr that kept one
   * set holds a plain list (bounding = effective = permitted; see
   * recordedCapabilities).
   */
  readonly capabilities: RecordedCapabilities | readonly number[];
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

/** CapabilitySets as JSON holds them: each set a list of capability numbers. */
export type RecordedCapabilities = { readonly [set in keyof CapabilitySets]: readonly number[] };

/** What the process was given, recorded as an ExecContext: the seccomp program in base64. */
export function execContext(
  given: Omit<ExecContext, "capabilities" | "noNewPrivs" | "seccomp" | "user"> & { readonly security: SecurityPlan },
): ExecContext {
  const { security, ...rest } = given;
  return {
    ...rest,
    capabilities: {
      bounding: [...security.capabilities.bounding],
      effective: [...security.capabilities.effective],
      permitted: [...security.capabilities.permitted],
      inheritable: [...security.capabilities.inheritable],
      ambient: [...security.capabilities.ambient],
    },
    noNewPrivs: security.noNewPrivs,
    // Native base64: a 10 KB filter through String.fromCharCode and btoa took ~1.5 ms of every start.
    ...(security.seccomp ? { seccomp: security.seccomp.toBase64() } : {}),
    ...(security.user ? { user: security.user } : {}),
  };
}

/**
 * The capability sets an ExecContext recorded. A record written before gcr
 * kept five sets holds one list, which was the bounding, effective and
 * permitted set, with inheritable and ambient empty (singleSet): a
 * container started then is entered with exactly what it was given.
 */
export function recordedCapabilities(context: Pick<ExecContext, "capabilities">): CapabilitySets {
  const recorded = context.capabilities;
  if (isList(recorded)) return singleSet(recorded);
  return {
    bounding: new Set(recorded.bounding),
    effective: new Set(recorded.effective),
    permitted: new Set(recorded.permitted),
    inheritable: new Set(recorded.inheritable),
    ambient: new Set(recorded.ambient),
  };
}

/** Array.isArray, narrowing a readonly union (its own signature only knows `any[]`). */
const isList = (value: RecordedCapabilities | readonly number[]): value is readonly number[] => Array.isArray(value);

/** The seccomp program an ExecContext recorded, or undefined (unconfined). */
export function recordedSeccomp(context: ExecContext): Uint8Array | undefined {
  return context.seccomp ? Uint8Array.fromBase64(context.seccomp) : undefined;
}

/** What the container's first process was given, for a process joining it (gcr exec, a startContainer hook). */
export function recordedSecurity(context: ExecContext, user = context.user): SecurityPlan {
  const seccomp = recordedSeccomp(context);
  return {
    capabilities: recordedCapabilities(context),
    noNewPrivs: context.noNewPrivs,
    maskPaths: false,
    ...(user ? { user } : {}),
    ...(seccomp ? { seccomp } : {}),
  };
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
  /** `--memory`: what the OOM message of a detached container's end names. */
  memoryBytes?: number;
  exec?: ExecContext;
  /** OCI: the bundle folder and config.json's annotations. */
  bundle?: string;
  annotations?: Record<string, string>;
  /** The container's cgroup folders, removed with it. */
  cgroups?: string[];
  /**
   * Mounts made in the host's mount namespace (a config.json without a mount
   * namespace of its own: the rootfs, bound onto itself, with the mounts
   * below it): detached with the container.
   */
  hostMounts?: string[];
  /** config.json's hooks for later verbs (start, delete): config.json may have changed by then. */
  hooks?: { startContainer?: Hook[]; poststart?: Hook[]; poststop?: Hook[] };
  /** --net bridge: its address, veth and ports, undone with it. */
  network?: BridgeAttachment;
}

/**
 * Writes `container.json` atomically: a temporary file renamed over it, so a
 * gcr killed at any moment leaves the old record or the new one.
 */
export function writeRecord(paths: ContainerPaths, record: ContainerRecord, first = false): void {
  // A start plan holds for the record create left it with (create writes the
  // plan after its last write): a later write (an update, a stop recorded)
  // may change what a start must do, so ./gcr leaves that start to Deno.
  // The `first` write, into the folder just made, has none to remove.
  try {
    if (!first) Deno.removeSync(paths.startPlan);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
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
  let record: ContainerRecord;
  try {
    record = JSON.parse(Deno.readTextFileSync(paths.record)) as ContainerRecord;
  } catch {
    return undefined;
  }
  return record.status === "created" || record.status === "creating" ? withStart(record, paths) : record;
}

/**
 * The container's command runs since now: the `started` file, which
 * readRecord folds into the record. An OCI start (./gcr's own,
 * launch/gcr.S, or Deno's) makes it because ./gcr writes no JSON; `gcr
 * run` makes it too, one file instead of a record rewritten at the exec.
 */
export function markStarted(paths: ContainerPaths): void {
  Deno.writeFileSync(paths.started, new Uint8Array(), { mode: 0o600 });
}

/**
 * A container whose command was started while its record still says
 * `created` (OCI: create, then start) or `creating` (gcr run: the record is
 * written before the clone, the start marked at the exec): running since
 * the `started` file's mtime. The next write of the record keeps both.
 */
function withStart(record: ContainerRecord, paths: ContainerPaths): ContainerRecord {
  const started = pathInfo(paths.started)?.mtime;
  return started ? { ...record, status: "running", started: started.toISOString() } : record;
}
