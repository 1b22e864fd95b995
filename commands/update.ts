/**
 * `gcr update`: runc's verb for new resource limits on a live container.
 * containerd's runc shim runs `update --resources=- ID` with the
 * container's new `linux.resources` on stdin for `docker update` and the
 * CRI's UpdateContainerResources; a person gives runc's flags instead.
 *
 * @module
 */

import { parseMemory, resourcesFromOci } from "../cgroup/limits.ts";
import { showCgroupOp } from "../cgroup/ops.ts";
import { planCgroupUpdate, runCgroupUpdate } from "../cgroup/update.ts";
import { traceCall } from "../output/trace.ts";
import { currentStatus } from "../state/processes.ts";
import { readRecord, writeRecord } from "../state/records.ts";
import { parseFlags } from "./flags.ts";
import { ociContainer, oneId } from "./oci_container.ts";
import { ownCgroup } from "./oci_cgroup.ts";
import { RUNC } from "./runc_errors.ts";
import { UsageError } from "./usage.ts";

/** runc's flags, each as the field of `linux.resources` it sets and how its value reads. */
const FIELDS = {
  "memory": ["memory", "limit", "size"],
  "memory-swap": ["memory", "swap", "size"],
  "memory-reservation": ["memory", "reservation", "size"],
  "kernel-memory": ["memory", "kernel", "size"],
  "kernel-memory-tcp": ["memory", "kernelTCP", "size"],
  "cpu-share": ["cpu", "shares", "uint"],
  "cpu-period": ["cpu", "period", "uint"],
  "cpu-quota": ["cpu", "quota", "int"],
  "cpu-burst": ["cpu", "burst", "uint"],
  "cpu-rt-period": ["cpu", "realtimePeriod", "uint"],
  "cpu-rt-runtime": ["cpu", "realtimeRuntime", "int"],
  "cpu-idle": ["cpu", "idle", "int"],
  "cpuset-cpus": ["cpu", "cpus", "text"],
  "cpuset-mems": ["cpu", "mems", "text"],
  "pids-limit": ["pids", "limit", "int"],
  "blkio-weight": ["blockIO", "weight", "uint"],
} as const satisfies Record<string, readonly [string, string, "size" | "uint" | "int" | "text"]>;

/** Intel RDT's: gcr has no resctrl support, so these are refused rather than ignored. */
const RDT = ["l3-cache-schema", "mem-bw-schema"];

/** A flag's value as runc reads it: sizes as Docker writes them (or -1), whole numbers. */
function _value(flag: string, text: string, kind: "size" | "uint" | "int" | "text"): number | string {
  if (kind === "text") return text;
  if (kind === "size") return text === "-1" ? -1 : parseMemory(text, `--${flag}`, 0);
  if (!(kind === "int" ? /^-?\d+$/ : /^\d+$/).test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`invalid value for --${flag}: ${JSON.stringify(text)} is not a whole number`);
  }
  return Number(text);
}

/** The resources runc's flags ask for, as `--resources` would give them. */
function _fromFlags(flags: Map<string, string>): Record<string, Record<string, unknown>> {
  const resources: Record<string, Record<string, unknown>> = {};
  for (const [flag, [section, field, kind]] of Object.entries(FIELDS)) {
    const text = flags.get(flag);
    if (text === undefined || text === "") continue;
    (resources[section] ??= {})[field] = _value(flag, text, kind);
  }
  return resources;
}

/** `--resources FILE` or `-` (stdin): the JSON of `linux.resources`. */
async function _readResources(from: string): Promise<unknown> {
  const text = from === "-" ? await new Response(Deno.stdin.readable).text() : Deno.readTextFileSync(from);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`--resources ${from}: not JSON: ${(error as Error).message}`);
  }
}

/**
 * `gcr update [--resources FILE|-] [runc's flags] ID`: the container's new
 * limits written into its cgroup (with --resources, the flags are ignored,
 * as runc ignores them). Absent or 0 leaves a limit as it is; -1 lifts it.
 */
export async function updateCommand(args: readonly string[]): Promise<number> {
  const spec = Object.fromEntries(
    ["resources", ...Object.keys(FIELDS), ...RDT].map((name) => [name, "value" as const]),
  );
  const { flags, rest } = parseFlags(args, spec, { r: "resources", "cpu-shares": "cpu-share" }, "update");
  const id = oneId(rest, "update");
  const found = ociContainer(id);
  if (currentStatus(found.record) === "stopped") throw new Error(RUNC.notRunning);
  const from = flags.get("resources");
  const rdt = RDT.find((flag) => !from && flags.get(flag));
  if (rdt) throw new Error(`--${rdt}: not supported: gcr does not set Intel RDT (resctrl)`);
  const limits = resourcesFromOci(from ? await _readResources(from) : _fromFlags(flags), "update");
  if (!found.record.cgroups?.length) throw new Error(`container ${found.id} has no cgroup to update`);
  const ops = planCgroupUpdate(ownCgroup(found.record), limits);
  runCgroupUpdate(ops, (op) => traceCall(showCgroupOp(op)));
  // The record's memory limit is what the OOM message of a detached gcr run names.
  const memory = limits.memoryBytes;
  const record = memory === undefined ? undefined : readRecord(found.paths);
  if (record) {
    const { memoryBytes: _old, ...rest } = record;
    writeRecord(found.paths, memory === -1 ? rest : { ...rest, memoryBytes: memory! });
  }
  return 0;
}
