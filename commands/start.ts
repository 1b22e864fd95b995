/**
 * `gcr start`: runs a created container's startContainer hooks in it,
 * opens its start gate (one byte into its start FIFO), waits until its
 * command has been exec'd (or has failed to be), then runs the poststart
 * hooks, as the spec's lifecycle orders them.
 *
 * @module
 */

import { AT_FDCWD, ERRNO, O, O_CLOEXEC, SIGNALS } from "../ffi/constants.ts";
import { check, errnoDescription, errnoName, lastErrno, SyscallError } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { cString, pollReadable } from "../ffi/fds.ts";
import { sleep } from "../host/time.ts";
import { warn } from "../output/runtime_log.ts";
import { traceCall } from "../output/trace.ts";
import { currentStatus, isRunning } from "../state/processes.ts";
import { type ContainerRecord, markStarted, recordedSecurity, updateRecord } from "../state/records.ts";
import type { FoundContainer } from "../state/containers.ts";
import { parseFlags } from "./flags.ts";
import { containerPids, hookState, ociContainer, oneId, runLateHooks } from "./oci_container.ts";
import { sendSignal } from "../ffi/signal.ts";
import { EXEC_WAIT_MS, takeStartReport } from "./start_plan.ts";

/** `gcr start ID`: startContainer hooks, the start gate, then poststart hooks. */
export async function startCommand(args: readonly string[]): Promise<number> {
  const { rest } = parseFlags(args, {}, {}, "start");
  const found = ociContainer(oneId(rest, "start"));
  const { record } = found;
  // ./gcr opened the gate itself and left the container's reports for this start to say (commands/start_plan.ts).
  const handed = takeStartReport(found.paths);
  if (handed !== undefined) {
    warn(execFailure(handed, record.command[0] ?? "") ?? NOT_EXECD);
    return 0;
  }
  const status = currentStatus(record);
  // runc's words: engines read them.
  if (status === "stopped") throw new Error("cannot start a container that has stopped");
  if (status === "running") throw new Error("cannot start an already running container");
  if (status !== "created") throw new Error(`cannot start a container in the ${status} state`);
  const hooks = record.hooks ?? {};
  if (hooks.startContainer?.length) await startContainerHooks(found, hooks.startContainer);

  // Opened before the byte goes in: every report the child writes after it lands here.
  const report = libc().openat(AT_FDCWD, cString(found.paths.reportFifo), O.RDONLY | O.NONBLOCK | O_CLOEXEC, 0);
  try {
    openGate(found);
    // A container created by a gcr before the report FIFO has none: nothing to wait for.
    if (report !== -1) {
      // A command that cannot be run is the container's exit status 127 (or
      // 126), as engines expect of a started container (podman's exit status
      // for a missing command): said in --log, not a failed start.
      const reports = readReports(report);
      const failure = reports ? execFailure(reports, record.command[0] ?? "") : NOT_EXECD;
      traceCall(`read(${found.paths.reportFifo}) to its end: ${failure ?? `${record.command[0]} exec'd`}`);
      if (failure) {
        warn(failure);
        if (reports) return 0;
      }
    }
  } finally {
    if (report !== -1) libc().close(report);
  }
  await runLateHooks(record, "poststart");
  return 0;
}

/** The warning for a container whose command was not exec'd in time (a frozen container). */
const NOT_EXECD = `the container's command was not exec'd within ${
  EXEC_WAIT_MS / 1000
} s of its start; not waiting longer`;

/** One byte into the start FIFO, which only the container's first process reads. */
function openGate(found: FoundContainer): void {
  const fd = libc().openat(AT_FDCWD, cString(found.paths.startFifo), O.WRONLY | O.NONBLOCK | O_CLOEXEC, 0);
  if (fd === -1) {
    const errno = lastErrno();
    if (errno === ERRNO.ENXIO) throw new Error(`cannot start container ${found.id}: its process is gone`);
    throw new SyscallError(`open(${found.paths.startFifo})`, errno);
  }
  try {
    check(Number(libc().write(fd, new Uint8Array([0]), 1n)), "write(start FIFO)");
    traceCall(`write(${found.paths.startFifo}, one byte) = 1: the container's process passes its start gate`);
  } finally {
    libc().close(fd);
  }
  Deno.removeSync(found.paths.startFifo);
  traceCall(`unlink(${found.paths.startFifo}) = 0`);
  // The record's status and start time (readRecord): a file, which ./gcr's own start makes as well.
  markStarted(found.paths);
  traceCall(`open(${found.paths.started}, O_CREAT|O_TRUNC) = 0: the container is running since now`);
}

/**
 * The container's startContainer hooks, in its namespaces with its process's
 * user and capabilities (as runc's init has them there); the first that
 * fails stops the container (the spec's step 7) and fails the start.
 */
async function startContainerHooks(
  found: FoundContainer & { record: ContainerRecord },
  hooks: NonNullable<ContainerRecord["hooks"]>["startContainer"],
): Promise<void> {
  const { record } = found;
  const context = record.exec;
  if (!context) throw new Error(`container ${found.id} has no record of how to enter it`);
  // Loaded only for configs with these hooks: start's own path stays light.
  const [{ runHooks }, { pidNamespaceVia }] = await Promise.all([
    import("../runner/hooks.ts"),
    import("../steps/join_namespaces.ts"),
  ]);
  try {
    await runHooks("startContainer", hooks ?? [], hookState(record, "created"), {
      in: "container",
      join: {
        pid: record.initPid!,
        namespaces: context.namespaces,
        cgroupProcs: context.cgroupProcs,
        ids: context.ids,
        security: recordedSecurity(context),
        env: context.env,
        pidVia: pidNamespaceVia(context.namespaces, Deno.uid()),
      },
    });
  } catch (error) {
    for (const pid of containerPids(record)) {
      try {
        sendSignal(pid, SIGNALS.SIGKILL);
      } catch { /* the start's own error is the one to report */ }
    }
    const deadline = performance.now() + 10_000;
    while (isRunning(record) && performance.now() < deadline) await sleep(10);
    updateRecord(found.paths, { status: "stopped", finished: new Date().toISOString() });
    throw error;
  }
}

/**
 * Reads the reports the container's last calls left in the report FIFO
 * until end-of-file, which comes when the command has been exec'd (the
 * FIFO's last holder, the status descriptor, is close-on-exec); undefined
 * when that takes longer than EXEC_WAIT_MS.
 */
function readReports(report: number): Uint8Array | undefined {
  const bytes: number[] = [];
  const buffer = new Uint8Array(256);
  const deadline = performance.now() + EXEC_WAIT_MS;
  for (;;) {
    // Until a report or end-of-file, then one read, which cannot find the
    // FIFO empty. (Reading first and taking EAGAIN from errno failed about
    // one start in a thousand here: errno read ENOENT though the read had
    // found the FIFO empty.)
    const left = deadline - performance.now();
    const ready = left > 0 ? pollReadable(report, Math.ceil(left)) : 0;
    if (ready === 0) return undefined;
    if (ready < 0) {
      const errno = lastErrno();
      if (errno === ERRNO.EINTR) continue;
      throw new SyscallError("poll(report FIFO)", errno);
    }
    const n = Number(libc().read(report, buffer, BigInt(buffer.length)));
    if (n === 0) return new Uint8Array(bytes);
    if (n > 0) {
      bytes.push(...buffer.subarray(0, n));
      continue;
    }
    const errno = lastErrno();
    if (errno !== ERRNO.EINTR) throw new SyscallError("read(report FIFO)", errno);
  }
}

/**
 * The failure in the reports, if any: a word that is not 0 is a call's
 * errno, or the exec trampoline's -errno for the command it could not run,
 * worded as runc words it (engines match on it: podman makes "no such file
 * or directory" and "executable file not found" exit 127, "permission
 * denied" 126).
 */
function execFailure(reports: Uint8Array, command: string): string | undefined {
  const whole = reports.subarray(0, reports.length - (reports.length % 4));
  const words = new Int32Array(whole.slice().buffer);
  const failed = words.find((word) => word !== 0);
  if (failed === undefined) return undefined;
  if (failed > 0) return `the container's last call before exec failed: ${errnoName(failed)}`;
  const errno = -failed;
  const why = errno === ERRNO.ENOENT && !command.includes("/")
    ? "executable file not found in $PATH"
    : errnoDescription(errno).toLowerCase();
  return `exec: ${JSON.stringify(command)}: ${why}`;
}
