/**
 * Whether a container's processes live: a pid is trusted only with the
 * start time recorded beside it (/proc/<pid>/stat), so a recycled pid is
 * never taken for the container's, nor signalled.
 *
 * @module
 */

import { processStart } from "../host/processes.ts";
import { type ContainerRecord, type ContainerStatus } from "./records.ts";

/** Whether `pid` is still the process that had start time `start`. */
export function sameProcess(pid: number | undefined, start: string | undefined): boolean {
  return pid !== undefined && start !== undefined && pid > 0 && processStart(pid) === start;
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
  if (record.initPid !== undefined) {
    if (sameProcess(record.initPid, record.initStart)) return status;
    // A detached container's end is its monitor's to record (gcr __exited):
    // until it has, the container is as it was, as Docker's ps shows one Up
    // until its shim reports the exit. A monitor that is gone records nothing.
    return record.detached && sameProcess(record.pid, record.pidStart) ? status : "stopped";
  }
  return sameProcess(record.pid, record.pidStart) ? status : "stopped";
}

/** Whether the container may still run: anything but stopped. */
export function isRunning(record: ContainerRecord): boolean {
  return currentStatus(record) !== "stopped";
}
