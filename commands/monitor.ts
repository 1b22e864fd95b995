/**
 * The two ends of a detached container's life in gcr, on either side of
 * gcr-monitor (ffi/monitor.S), which is its parent in between and runs no
 * JavaScript: `gcr __monitor …` makes the container as the monitor's child
 * and exits once its command runs; `gcr __exited STATUS`, which the monitor
 * becomes when the container has ended, records that and takes it apart.
 *
 * @module
 */
import { F_DUPFD_CLOEXEC, O } from "../ffi/constants.ts";
import { check } from "../ffi/errno.ts";
import { openFd } from "../ffi/fds.ts";
import { libc } from "../ffi/libc.ts";
import { MONITOR_NAME } from "../ffi/monitor.ts";
import { readTextOr } from "../host/files.ts";
import { processStart } from "../host/processes.ts";
import { StepError } from "../runner/step_error.ts";
import { listContainers } from "../state/containers.ts";
import { exitStatusOf, runCommand, takeApart } from "./run.ts";
import { ownCgroupFolders } from "../cgroup/remove.ts";
import { UsageError } from "./usage.ts";

/**
 * Points every descriptor that leads where stdout or stderr do (Deno writes
 * Deno.stdout, Deno.stderr and console to duplicates of fds 1 and 2 it made
 * at start-up) at the container's log, but `keep`.
 */
function outputTo(log: string, keep: readonly number[] = []): void {
  const fd = openFd(log, O.WRONLY | O.CREAT | O.APPEND, 0o600);
  const stdio = [1, 2].map((n) => Deno.readLinkSync(`/proc/self/fd/${n}`));
  for (const entry of [...Deno.readDirSync("/proc/self/fd")]) {
    const n = Number(entry.name);
    if (keep.includes(n) || n === fd) continue;
    try {
      if (stdio.includes(Deno.readLinkSync(`/proc/self/fd/${n}`))) check(libc().dup2(fd, n), `dup2(log, ${n})`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  libc().close(fd);
}

/** gcr-monitor, this process's parent, which the container's parent is to be; refused when it is anything else. */
function ownMonitor(): { pid: number; start: string } {
  const pid = Deno.ppid;
  const start = processStart(pid);
  if (readTextOr(`/proc/${pid}/comm`).trim() !== MONITOR_NAME || !start) {
    throw new UsageError(`gcr __monitor is run by ${MONITOR_NAME} (gcr run -d), not by hand`);
  }
  return { pid, start };
}

/**
 * `gcr __monitor RUN-ARGS…`: stdout is a pipe to the `gcr run -d` that
 * started the monitor; once the container is registered, stdout and stderr
 * go to its log, and the pipe carries one line: `started <id>` or `error
 * <status> <message>`.
 */
export async function monitorCommand(argv: readonly string[]): Promise<number> {
  const monitor = ownMonitor();
  const report = check(libc().fcntl(1, F_DUPFD_CLOEXEC, 10), "fcntl(1, F_DUPFD_CLOEXEC)");
  const send = (line: string) => {
    const bytes = new TextEncoder().encode(line + "\n");
    libc().write(report, bytes, BigInt(bytes.length));
    libc().close(report);
  };
  let sent = false, logging = false;
  try {
    return await runCommand(argv, {
      monitor,
      registered: (paths) => {
        logging = true;
        // The pipe to gcr run -d must reach end-of-file when this gcr exits.
        outputTo(paths.log, [report]);
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

/**
 * `gcr __exited STATUS`: gcr-monitor's last act, in its place (the same
 * pid, so the record's monitor is still this process while it works): the
 * container it waited for ended with wait status STATUS. Its cgroup and
 * network go, then its folders (--rm) or its record says how it ended.
 * Nothing to do when no running container names this process as its
 * monitor (the gcr that made it failed, and took it apart itself).
 */
export async function exitedCommand(argv: readonly string[]): Promise<number> {
  if (argv.length !== 1 || !/^\d+$/.test(argv[0]!)) throw new UsageError("gcr __exited takes a wait status");
  const wait = Number(argv[0]);
  const start = processStart(Deno.pid);
  const found = listContainers().find(({ record }) =>
    record?.detached && record.pid === Deno.pid && record.pidStart === start && record.status !== "stopped"
  );
  if (!found?.record) return 0;
  const { record, paths } = found;
  outputTo(paths.log);
  const signal = wait & 0x7f;
  const status = signal ? { signaled: signal } : { exited: (wait >> 8) & 0xff };
  // The cgroup code loads only for a container that has one (gcr run -d with limits), as in gcr run.
  const cgroup = ownCgroupFolders(record.cgroups ?? []).length
    ? (await import("./oci_cgroup.ts")).ownCgroup(record)
    : undefined;
  const exitStatus = exitStatusOf(status, cgroup, record.memoryBytes);
  await takeApart(record.id, paths, {
    ...(cgroup ? { cgroup } : {}),
    ...(record.network ? { bridge: record.network } : {}),
    remove: record.remove === true,
    exitStatus,
  });
  return 0;
}
