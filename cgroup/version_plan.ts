/**
 * What the cgroup v1 and v2 plans share: the options a plan takes, the
 * shape it yields (VersionPlan: the container's folders, the shared folders
 * above them, the ops), where a container's folder goes in a hierarchy
 * (`gcr/<id>` under the caller's cgroup, or `linux.cgroupsPath`), and how
 * limits read whatever the version (the controllers they touch, `--cpus`
 * as a CFS quota). v1.ts and v2.ts each make a VersionPlan; plan.ts
 * chooses which.
 *
 * @module
 */

import type { CgroupHost } from "./hierarchies.ts";
import type { ResourceLimits } from "./limits.ts";
import type { CgroupOp } from "./ops.ts";

import { exists } from "../host/files.ts";
/** The folder under the caller's cgroup that holds gcr's containers. */
export const GCR_FOLDER = "gcr";
/** The CFS period gcr uses for `--cpus`, as Docker: 100 ms. */
export const CPU_PERIOD_US = 100_000;

/**
 * Where and how: `host` defaults to what this host mounts; `uid` to the
 * caller's; `rootless` to whether that uid is not 0 when `uid` is given, else
 * to runc's judgement of this process (host/rootless.ts: uid 0 in a user
 * namespace of its own is rootless too).
 */
export interface CgroupOptions {
  readonly host?: CgroupHost;
  /** Use the v2 hierarchy of a hybrid host (tests: /sys/fs/cgroup/unified here). */
  readonly preferV2?: boolean;
  /** More v2 controllers to enable for the container (beyond those its limits need). */
  readonly v2Controllers?: readonly string[];
  readonly uid?: number;
  /** Only cgroups the caller owns (delegated to it) may be used. */
  readonly rootless?: boolean;
  /**
   * The container's cgroup path, as OCI `linux.cgroupsPath`: absolute paths
   * (`/libpod_parent/libpod-<id>`) from each hierarchy's root, relative ones
   * from the caller's cgroup. Default: `gcr/<id>` under the caller's cgroup.
   * Missing folders above it are made, and removed again with the container
   * when empty; the container's own folder must not exist yet.
   */
  readonly path?: string;
  /**
   * Controllers whose hierarchies the container joins even without limits
   * for them, in v1 names: an OCI container needs its cgroup in every
   * hierarchy (`["memory", "cpu", "cpuacct", "pids", "cpuset", "devices",
   * "freezer"]`), pause needs `freezer`. On v1 the memory, cpu, cpuacct and
   * pids hierarchies are always joined; on v2 these enable controllers
   * (devices and freezer are built in there).
   */
  readonly controllers?: readonly string[];
  /**
   * On v1: join every hierarchy the host mounts, whatever its controllers
   * (blkio, name=systemd…), and a hybrid host's v2 one, as runc's cgroupfs
   * manager puts an OCI container's processes. Engines read a container's
   * cgroups from /proc/<pid>/cgroup (containerd's shim: its stats), and a
   * hierarchy left out there is the host's root cgroup.
   */
  readonly everyHierarchy?: boolean;
}

/** Who makes the cgroup: the uid that must own a folder to use it, and whether it must (rootless). */
export interface CgroupCaller {
  readonly uid: number;
  readonly rootless: boolean;
}

/** What a version's plan yields (v1.ts's and v2.ts's): the container's folders, the folders above them it may make, and the ops. */
export interface VersionPlan {
  dirs: string[];
  /** Shared `gcr` folders: removed when empty, whoever made them. */
  folders: string[];
  ops: CgroupOp[];
}

/** Which settings a set of limits touches, by controller. */
export function controllersTouched(limits: ResourceLimits) {
  const memory = limits.memoryBytes !== undefined || limits.memoryReservationBytes !== undefined ||
    limits.memorySwapBytes !== undefined || limits.memorySwappiness !== undefined || limits.oomKillDisabled === true;
  const cpu = limits.cpus !== undefined || limits.cpuShares !== undefined || limits.cpuQuotaUs !== undefined ||
    limits.cpuPeriodUs !== undefined;
  const cpuset = limits.cpusetCpus !== undefined || limits.cpusetMems !== undefined;
  const devices = (limits.devices ?? []).length > 0;
  return { memory, cpu, cpuset, devices, pids: limits.pidsLimit !== undefined };
}

/** `--cpus` as a CFS quota per CPU_PERIOD_US; the kernel refuses a quota under 1 ms (EINVAL). */
export const cpuQuotaUs = (cpus: number) => Math.max(1000, Math.round(cpus * CPU_PERIOD_US));

/**
 * `linux.cgroupsPath` as a folder in a hierarchy: absolute paths are taken
 * from the hierarchy's mount point (the runtime spec's rule), relative ones
 * from the caller's cgroup. `..` is refused: the path must not climb out.
 */
function _explicitDir(mount: string, callerDir: string, path: string): string {
  const parts = path.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.length === 0 || parts.includes("..")) {
    throw new Error(`invalid cgroups path ${JSON.stringify(path)}: it must name a cgroup and not contain ..`);
  }
  return `${path.startsWith("/") ? mount : callerDir}/${parts.join("/")}`;
}

/**
 * Where a container's folder goes in one hierarchy: the folder, and the
 * folders above it that may have to be made first (outermost first).
 * Default: `gcr/<id>` under the caller's cgroup, with the shared `gcr`
 * folder. With `options.path`: that path, with each missing ancestor below
 * the hierarchy's root (checked now; mkdir-if-missing copes with a race).
 */
export function placement(mount: string, callerDir: string, id: string, path: string | undefined) {
  if (path === undefined) {
    const folder = `${callerDir}/${GCR_FOLDER}`;
    return { dir: `${folder}/${id}`, parents: [folder], shared: [folder] };
  }
  const dir = _explicitDir(mount, callerDir, path);
  const parents: string[] = [];
  for (let up = dir.slice(0, dir.lastIndexOf("/")); up.length > mount.length; up = up.slice(0, up.lastIndexOf("/"))) {
    if (exists(up)) break;
    parents.unshift(up);
  }
  return { dir, parents, shared: [] as string[] };
}

/** The nearest folder at or above `dir` that exists: where a new cpuset folder copies its sets from. */
export function nearestExisting(dir: string): string {
  let up = dir;
  while (up.includes("/") && !exists(up)) up = up.slice(0, up.lastIndexOf("/"));
  return up;
}
