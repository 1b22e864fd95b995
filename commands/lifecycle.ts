/**
 * Containers after they start: `gcr ps`, `logs`, `stop`, `kill`, `rm`,
 * `inspect`. Each reads the records in the runtime directory (state.ts) and
 * signals the container's first process by host pid, after checking that
 * the pid still names the same process (its start time), so a recycled pid
 * is never signalled.
 *
 * @module
 */
import { SIGNALS } from "../ffi/constants.ts";
import { findContainer, type FoundContainer, listContainers, removeContainer } from "../state/containers.ts";
import { currentStatus, isRunning, sameProcess } from "../state/processes.ts";
import { type ContainerRecord, type ContainerStatus, readRecord, updateRecord } from "../state/records.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A signal by name (`TERM`, `SIGTERM`, `term`) or number (`15`), as kill(1) and runc take it. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    if (number >= 1 && number <= 64) return number;
  } else {
    const name = text.toUpperCase().replace(/^(SIG)?/, "SIG") as keyof typeof SIGNALS;
    if (name in SIGNALS) return SIGNALS[name];
  }
  throw new UsageError(`unknown signal ${JSON.stringify(text)} (a name such as TERM or KILL, or a number 1-64)`);
}

/** `3 seconds`, `About a minute`, `2 hours`: how Docker says durations. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return "Less than a second";
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.round(s / 60);
  if (m === 1) return "About a minute";
  if (m < 60) return `${m} minutes`;
  const h = Math.round(m / 60);
  if (h === 1) return "About an hour";
  if (h < 48) return `${h} hours`;
  return `${Math.round(h / 24)} days`;
}

/** The STATUS column: `Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`. */
export function statusText(record: ContainerRecord, status: ContainerStatus, now = Date.now()): string {
  switch (status) {
    case "creating":
      return "Creating";
    case "created":
      return "Created";
    case "running":
      return `Up ${humanDuration(now - Date.parse(record.started ?? record.created))}`;
    case "paused":
      return `Up ${humanDuration(now - Date.parse(record.started ?? record.created))} (Paused)`;
    case "stopped": {
      const code = record.exitStatus === undefined ? "?" : String(record.exitStatus);
      const when = record.finished ? ` ${humanDuration(now - Date.parse(record.finished))} ago` : "";
      return `Exited (${code})${when}`;
    }
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("   ").trimEnd()).join("\n");
}

/** `gcr ps [-a] [-q]`: running containers (all with -a), newest first. */
export function psCommand(args: readonly string[]): number {
  const { flags, rest } = parseFlags(args, { all: "bool", quiet: "bool" }, { a: "all", q: "quiet" }, "ps");
  if (rest.length) throw new UsageError(`gcr ps takes no arguments (got ${rest.join(" ")})`);
  const all = flags.has("all");
  const now = Date.now();
  const shown = listContainers().flatMap((found) => {
    if (!found.record) return [];
    const status = currentStatus(found.record);
    return all || status !== "stopped" ? [{ record: found.record, status }] : [];
  }).sort((a, b) => b.record.created.localeCompare(a.record.created));
  if (flags.has("quiet")) {
    for (const { record } of shown) console.log(record.id);
    return 0;
  }
  const rows = [["CONTAINER ID", "NAME", "IMAGE", "COMMAND", "STATUS", "PID", "CREATED"]];
  for (const { record, status } of shown) {
    const command = JSON.stringify(record.command.join(" "));
    rows.push([
      record.id.slice(0, 12),
      record.name ?? "",
      record.image,
      command.length > 24 ? `${command.slice(0, 22)}…"` : command,
      statusText(record, status, now),
      status === "stopped" || record.initPid === undefined ? "-" : String(record.initPid),
      `${humanDuration(now - Date.parse(record.created))} ago`,
    ]);
  }
  console.log(table(rows));
  return 0;
}

/** The container `ref` names, with its record (a folder without one is not a container to act on). */
function recorded(ref: string): FoundContainer & { record: ContainerRecord } {
  const found = findContainer(ref);
  if (!found.record) throw new Error(`container ${found.id} has no readable record (gcr prune removes it)`);
  return found as FoundContainer & { record: ContainerRecord };
}

/**
 * Sends `signal` to the container's first process when it is still the one
 * the record names. Returns false when the container is not running.
 */
export function signalContainer(record: ContainerRecord, signal: number): boolean {
  if (!sameProcess(record.initPid, record.initStart)) return false;
  try {
    Deno.kill(record.initPid!, signal as unknown as Deno.Signal);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Waits until the container has stopped and the gcr watching it has written so (or `ms` pass). */
async function waitStopped(found: FoundContainer, ms: number): Promise<boolean> {
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
function noteStopped(found: FoundContainer): void {
  const record = readRecord(found.paths);
  if (record && record.status !== "stopped" && currentStatus(record) === "stopped") {
    updateRecord(found.paths, { status: "stopped", finished: record.finished ?? new Date().toISOString() });
  }
}

/** `gcr stop [-t SECONDS] <container>…`: SIGTERM, then SIGKILL after the grace period (10 s). */
export async function stopCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { time: "value" }, { t: "time" }, "stop");
  const time = flags.get("time") ?? "10";
  if (!/^\d+$/.test(time)) throw new UsageError(`gcr stop: -t takes whole seconds (got ${JSON.stringify(time)})`);
  if (rest.length === 0) throw new UsageError("gcr stop needs at least one container");
  let status = 0;
  for (const ref of rest) {
    try {
      const found = recorded(ref);
      if (signalContainer(found.record, SIGNALS.SIGTERM) && !(await waitStopped(found, Number(time) * 1000))) {
        // pid 1 of a PID namespace ignores signals it has no handler for: only SIGKILL always ends it.
        signalContainer(found.record, SIGNALS.SIGKILL);
        if (!(await waitStopped(found, 10_000))) throw new Error(`container ${found.id} did not stop after SIGKILL`);
      }
      await waitStopped(found, 2000);
      noteStopped(found);
      console.log(ref);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      console.error(`gcr: ${(error as Error).message}`);
      status = 1;
    }
  }
  return status;
}

/** `gcr kill [-s SIGNAL] <container>…`: a signal (default KILL) to each container's first process. */
export function killCommand(args: readonly string[]): number {
  const { flags, rest } = parseFlags(args, { signal: "value" }, { s: "signal" }, "kill");
  const signal = parseSignal(flags.get("signal") ?? "KILL");
  if (rest.length === 0) throw new UsageError("gcr kill needs at least one container");
  let status = 0;
  for (const ref of rest) {
    try {
      const found = recorded(ref);
      if (!signalContainer(found.record, signal)) throw new Error(`container ${found.id} is not running`);
      console.log(ref);
    } catch (error) {
      console.error(`gcr: ${(error as Error).message}`);
      status = 1;
    }
  }
  return status;
}

/** `gcr rm [-f] <container>…`: removes stopped containers (-f: kills running ones first). */
export async function rmCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { force: "bool" }, { f: "force" }, "rm");
  if (rest.length === 0) throw new UsageError("gcr rm needs at least one container");
  const force = flags.has("force");
  let status = 0;
  for (const ref of rest) {
    try {
      const found = findContainer(ref);
      if (found.record && isRunning(found.record)) {
        if (!force) {
          throw new Error(`container ${found.id} is running (gcr stop it, or gcr rm -f): not removed`);
        }
        signalContainer(found.record, SIGNALS.SIGKILL);
        if (!(await waitStopped(found, 10_000))) throw new Error(`container ${found.id} did not stop after SIGKILL`);
      }
      await releaseNetwork(found);
      removeContainer(found);
      console.log(found.id);
    } catch (error) {
      console.error(`gcr: ${(error as Error).message}`);
      status = 1;
    }
  }
  return status;
}

/**
 * A bridged container whose gcr died without undoing its network (killed
 * with SIGKILL): its NAT table and address are released here. Its veth went
 * with its network namespace.
 */
export async function releaseNetwork(found: FoundContainer): Promise<void> {
  const network = found.record?.network;
  if (!network || sameProcess(found.record!.pid, found.record!.pidStart)) return;
  const { detachFromBridge } = await import("../net/attach.ts");
  try {
    await detachFromBridge(network);
  } catch (error) {
    console.error(`gcr: ${(error as Error).message}`);
  }
}

/** `gcr inspect <container>…`: the records as a JSON array, with the status as it is now. */
export function inspectCommand(args: readonly string[]): number {
  const { rest } = parseFlags(args, {}, {}, "inspect");
  if (rest.length === 0) throw new UsageError("gcr inspect needs at least one container");
  const out: unknown[] = [];
  let status = 0;
  for (const ref of rest) {
    try {
      const found = recorded(ref);
      const { exec, ...record } = found.record;
      out.push({
        ...record,
        status: currentStatus(found.record),
        ...(exec ? { process: { env: exec.env, workdir: exec.workdir, user: exec.user } } : {}),
        paths: { runtime: found.paths.run, data: found.paths.dir, log: found.paths.log },
      });
    } catch (error) {
      console.error(`gcr: ${(error as Error).message}`);
      status = 1;
    }
  }
  console.log(JSON.stringify(out, null, 2));
  return status;
}

/** `gcr logs [-f] <container>`: what a detached container wrote; -f follows until it stops. */
export async function logsCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { follow: "bool" }, { f: "follow" }, "logs");
  if (rest.length !== 1) throw new UsageError("gcr logs takes one container");
  const found = recorded(rest[0]!);
  if (!found.record.detached) {
    throw new Error(`container ${found.id} was not started with -d: its output went to the terminal of gcr run`);
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(found.paths.log, { read: true });
  } catch (error) {
    throw new Error(`cannot read the log of ${found.id}: ${(error as Error).message}`);
  }
  const follow = flags.has("follow");
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = file.readSync(buffer);
      if (n !== null && n > 0) {
        await Deno.stdout.write(buffer.subarray(0, n));
        continue;
      }
      if (!follow) return 0;
      const record = readRecord(found.paths);
      // One more read after it stopped: what it wrote last is not lost.
      if (!record || currentStatus(record) === "stopped") {
        for (let m = file.readSync(buffer); m; m = file.readSync(buffer)) {
          await Deno.stdout.write(buffer.subarray(0, m));
        }
        return 0;
      }
      await sleep(100);
    }
  } finally {
    file.close();
  }
}

/** `gcr prune`: removes every stopped container and prints its id. */
export async function pruneCommand(args: readonly string[]): Promise<number> {
  if (args.length) throw new Error(`gcr prune takes no arguments (got ${args.join(" ")})`);
  for (const found of listContainers()) {
    if (found.record && isRunning(found.record)) continue;
    // A folder without a readable record is left by a reboot or by a gcr
    // killed while it was being made: no container runs from it.
    await releaseNetwork(found);
    removeContainer(found);
    console.log(found.id);
  }
  return 0;
}
