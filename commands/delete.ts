/**
 * `gcr delete`: removes a stopped container (--force: kills it first), as
 * runc does: a --force of a container that does not exist succeeds.
 *
 * @module
 */

import { removeContainer } from "../state/containers.ts";
import { RUNC } from "./runc_errors.ts";
import { currentStatus } from "../state/processes.ts";
import { parseFlags } from "./flags.ts";
import { containerPids, ociFolder, oneId, runLateHooks } from "./oci_container.ts";
import { recordedCgroup, removeEmptyCgroup } from "../cgroup/remove.ts";
import { sleep } from "../host/time.ts";
import { traceCall } from "../output/trace.ts";
import { exists } from "../host/files.ts";
import { deletePlan, deletePlanPath, readDeletePlan, runDeletePlan } from "./delete_plan.ts";

/** `gcr delete [--force] ID`: removes a stopped container (kills it first with --force). */
export async function deleteCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { force: "bool" }, { f: "force" }, "delete");
  const id = oneId(rest, "delete");
  const found = ociFolder(id);
  if (!found) {
    // As runc: --force of a container that does not exist (its create failed) succeeds.
    if (flags.get("force") === "true") return 0;
    throw new Error(RUNC.notExist);
  }
  const record = found.record;
  const status = record && currentStatus(record);
  if (record && status !== "stopped") {
    if (flags.get("force") !== "true") {
      throw new Error(`cannot delete container ${found.id} that is not stopped: ${status} (use --force)`);
    }
    // libc's module only here: a delete of a stopped container loads none.
    const [{ sendSignal }, { SIGNALS }] = await Promise.all([
      import("../ffi/signal.ts"),
      import("../ffi/constants.ts"),
    ]);
    for (const pid of containerPids(record)) {
      try {
        if (sendSignal(pid, SIGNALS.SIGKILL)) traceCall(`kill(${pid}, SIGKILL) = 0`);
      } catch { /* not ours to signal: the wait below says so */ }
    }
    // A frozen cgroup holds the SIGKILL until it is thawed, as kill says.
    if (status === "paused") (await import("./oci_cgroup.ts")).thawContainer({ ...found, record });
    const deadline = performance.now() + 10_000;
    while (currentStatus(record) !== "stopped") {
      if (performance.now() > deadline) throw new Error(`container ${found.id} did not die after SIGKILL`);
      await sleep(10);
    }
  }
  // Stopped: what create planned (the same file ./gcr runs without Deno), then whatever it left;
  // only where the record agrees that a plan covers it (no poststop hooks, no host mounts).
  const plan = record && deletePlan(record, found.paths) && readDeletePlan(found.paths);
  if (plan) {
    traceCall(`run ${deletePlanPath(found.paths)} (${plan.length} ops; its G: stopped, by the record's start time)`);
    const stoppedAt = runDeletePlan(plan);
    if (stoppedAt === "done") return 0;
    traceCall(`the plan stopped at ${stoppedAt.op} ${stoppedAt.path}: delete goes on without it`);
  }
  const { own, created } = recordedCgroup(record?.cgroups ?? []);
  if (record && own.length) {
    traceCall(`remove the cgroup: ${(record.cgroups ?? []).join(" ")}`);
    // Empty, as a stopped container's is: one rmdir per hierarchy. A process
    // left in it (a pod's, forked off) is killed by the whole cgroup code.
    if (!removeEmptyCgroup(own, created)) await (await import("./oci_cgroup.ts")).ownCgroup(record).remove();
  }
  for (const mount of record?.hostMounts ?? []) traceCall(`umount2(${mount}, MNT_DETACH)`);
  // An OCI container has its runtime folder only (under --root); the data folder is gcr run's.
  traceCall(() => `remove the container's state: ${[found.paths.run, found.paths.dir].filter(exists).join(" ")}`);
  await removeContainer({ ...found, ...(record ? { record: { ...record, cgroups: [] } } : {}) });
  if (record) await runLateHooks(record, "poststop");
  return 0;
}
