/**
 * `gcr ps`: the containers, as Docker lists them (running ones; -a: all;
 * -q: ids), or, in runc's form (`ps ID`), a container's processes.
 *
 * @module
 */

import { asRunc } from "./runc_errors.ts";
import { listContainers } from "../state/containers.ts";
import { currentStatus } from "../state/processes.ts";
import type { ContainerRecord, ContainerStatus } from "../state/records.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { containerPids, ociContainer, oneId } from "./oci_container.ts";

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

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("   ").trimEnd()).join("\n");
}

/** `gcr ps [-a] [-q]`: running containers (all with -a), newest first. */
function dockerPs(args: readonly string[]): number {
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

/** `gcr ps [--format table|json] ID`: the container's processes, as host pids. */
function ociPsCommand(args: readonly string[]): number {
  const { flags, rest } = parseFlags(args, { format: "value" }, { f: "format" }, "ps");
  const found = ociContainer(oneId(rest, "ps"));
  const pids = containerPids(found.record);
  if ((flags.get("format") ?? "table") === "json") console.log(JSON.stringify(pids));
  else console.log(["PID", ...pids.map(String)].join("\n"));
  return 0;
}

/** `gcr ps …`: runc's `ps ID` lists a container's processes; Docker's `ps` lists containers. */
export function psCommand(args: readonly string[]): number | Promise<number> {
  return args.some((a) => !a.startsWith("-")) ? asRunc(1, () => ociPsCommand(args)) : dockerPs(args);
}
