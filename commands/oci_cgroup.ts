/**
 * A container's cgroup for the OCI verbs: config.json's, made by `gcr
 * create` as runc's cgroupfs manager makes it, rootful or rootless
 * (host/rootless.ts, runc's `--rootless`), and reopened from the record by
 * the verbs that change or remove it. Apart from oci_container.ts, so that
 * the verbs that need no cgroup (state, kill, start) do not load its code.
 *
 * Rootless, runc uses a cgroup only where the kernel lets it (a delegated
 * one) and otherwise goes on without: a permission error while joining is
 * ignored when config.json names no `cgroupsPath`, device rules are never
 * an error ("not expected to work"), and any other limit that finds no
 * cgroup fails the create ("cannot set memory limit: container could not
 * join or create cgroup"). gcr does the same, and says in `--log` what it
 * left out.
 *
 * @module
 */
import type { DeviceRule, ResourceLimits } from "../cgroup/limits.ts";
import { CgroupUnavailableError } from "../cgroup/hierarchies.ts";
import {
  type ContainerCgroup,
  createContainerCgroup,
  freezerOp,
  openContainerCgroup,
  thaw,
} from "../cgroup/container_cgroup.ts";
import { showCgroupOp } from "../cgroup/ops.ts";
import { traceCall } from "../output/trace.ts";
import { type ContainerRecord, updateRecord } from "../state/records.ts";
import type { FoundContainer } from "../state/containers.ts";
import { currentStatus } from "../state/processes.ts";
import { ociContainer } from "./oci_container.ts";
import { RUNC } from "./runc_errors.ts";
import type { CgroupOptions } from "../cgroup/version_plan.ts";
import type { OciSpec } from "../oci/spec/spec.ts";
import { warn, warnInLog } from "../output/runtime_log.ts";
import { recordedCgroup } from "../cgroup/remove.ts";

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

/** The hierarchies an OCI container joins: all of them, as runc's cgroupfs manager does. */
const CONTROLLERS = ["memory", "cpu", "cpuacct", "pids", "devices", "freezer", "cpuset"];

/** Whether any limit is set (an empty device list is none). */
function hasLimits(limits: ResourceLimits): boolean {
  return Object.values(limits).some((v) => v !== undefined && !(Array.isArray(v) && v.length === 0));
}

function ociCgroupOptions(spec: OciSpec, rootless: boolean): CgroupOptions {
  return {
    ...(spec.linux.cgroupsPath ? { path: spec.linux.cgroupsPath } : {}),
    controllers: CONTROLLERS,
    // Every hierarchy, the hybrid v2 one too: containerd's shim reads a container's stats from them.
    everyHierarchy: true,
    rootless,
  };
}

/**
 * config.json's limits as gcr writes them: runc's device rules after the
 * spec's (the /dev gcr makes stays usable); rootless, no device rules.
 */
function ociLimits(spec: OciSpec, rootless: boolean): ResourceLimits {
  const asked = spec.linux.resources ?? {};
  if (rootless || !asked.devices?.length) return rootless ? { ...asked, devices: [] } : asked;
  return { ...asked, devices: [...asked.devices, ...DEFAULT_DEVICE_RULES] };
}

/**
 * Makes the container's cgroup with config.json's limits; undefined when
 * none can be had and none is needed (rootless without delegation, or a
 * host without cgroups). `record` is called with the folders before they
 * are made, so that a create killed meanwhile leaves them findable.
 */
export function createOciCgroup(
  id: string,
  spec: OciSpec,
  rootless: boolean,
  record: (folders: string[]) => void,
): ContainerCgroup | undefined {
  const limits = ociLimits(spec, rootless);
  const options = ociCgroupOptions(spec, rootless);
  if (rootless && spec.linux.resources?.devices?.length) {
    warn("rootless: linux.resources.devices left out (device rules need root on the host, as runc has it)");
  }
  try {
    return createContainerCgroup(id, limits, options, record);
  } catch (error) {
    if (!(error instanceof CgroupUnavailableError)) throw error;
    // runc ignores a cgroup it cannot make only where config.json named none.
    if (hasLimits(limits) || (rootless && spec.linux.cgroupsPath)) throw error;
    if (rootless) {
      warnInLog(`rootless: no cgroup of the container's own, it stays in gcr's (${error.message})`);
      if (!spec.linux.namespaces.some((n) => n.type === "pid" && !n.path)) {
        warn("a rootless container with no cgroup and no PID namespace of its own: its processes cannot all be killed");
      }
    }
    return undefined;
  }
}

/** The container `id` names, which must be `wanted` and have a cgroup (pause and resume freeze it). */
export function freezerOf(id: string, wanted: "running" | "paused"): FoundContainer & { record: ContainerRecord } {
  const found = ociContainer(id);
  const status = currentStatus(found.record);
  if (status !== wanted) throw new Error(wanted === "running" ? RUNC.notRunning : RUNC.notPaused);
  if (!found.record.cgroups?.length) throw new Error(`container ${found.id} has no cgroup to freeze`);
  return found;
}

/**
 * Thaws a paused container: resume, and kill 9 or delete --force of a
 * paused one, after the SIGKILL (a frozen v1 cgroup holds the signal until
 * it is thawed; runc's kill and delete thaw it then too, and containerd's
 * `ctr tasks kill -s 9` and `tasks delete --force` do not resume first).
 */
export function thawContainer(found: FoundContainer & { record: ContainerRecord }): void {
  const cgroup = ownCgroup(found.record);
  traceCall(showCgroupOp(freezerOp(cgroup, false)));
  thaw(cgroup);
  updateRecord(found.paths, { status: "running" });
}

/** The container's own cgroup, reopened from its record (delete, update, pause, resume, a detached run's end). */
export function ownCgroup(record: ContainerRecord): ContainerCgroup {
  const { own, created } = recordedCgroup(record.cgroups ?? []);
  return openContainerCgroup(own, { created });
}
