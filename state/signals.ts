/**
 * Signalling a container's first process, by host pid, only while the pid
 * still names the same process (its start time), so a recycled pid is never
 * signalled; and waiting until it has stopped and the gcr watching it has
 * written so.
 *
 * @module
 */

import { sleep } from "../host/time.ts";
import type { FoundContainer } from "./containers.ts";
import { currentStatus, sameProcess } from "./processes.ts";
import { type ContainerRecord, readRecord, updateRecord } from "./records.ts";
import { sendSignal } from "../ffi/signal.ts";

/**
 * Sends `signal` to the container's first process when it is still the one
 * the record names. Returns false when the container is not running.
 */
export function signalContainer(record: ContainerRecord, signal: number): boolean {
  if (!sameProcess(record.initPid, record.initStart)) return false;
  return sendSignal(record.initPid!, signal);
}

/** Waits until the container has stopped and the gcr watching it has written so (or `ms` pass). */
export async function waitStopped(found: FoundContainer, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (;;) {
    const record = readRecord(found.paths);
    // Gone: a --rm container's gcr removed it.
    if (!record) return true;
    const stopped = currentStatus(record) === "stopped";
    const watcherGone = record.status === "stopped" || !sameProcess(record.pid, record.pidStart);
    if (stopped && watcherGone) return true;
    if (performance.now() > deadline) return stopped;
    await sleep(20);
  }
}

/**
 * Records a stop that no gcr was there to see (the watching gcr died, or an
 * OCI container, whose creator exits): the exit status is then unknown.
 */
export function noteStopped(found: FoundContainer): void {
  const record = readRecord(found.paths);
  if (record && record.status !== "stopped" && currentStatus(record) === "stopped") {
    updateRecord(found.paths, { status: "stopped", finished: record.finished ?? new Date().toISOString() });
  }
}
