/**
 * `gcr pause`: freezes every process of a container (the cgroup freezer).
 *
 * @module
 */

import { updateRecord } from "../state/records.ts";
import { parseFlags } from "./flags.ts";
import { oneId } from "./oci_container.ts";
import { freezerOf, ownCgroup } from "./oci_cgroup.ts";

import { freeze, freezerOp } from "../cgroup/container_cgroup.ts";
import { showCgroupOp } from "../cgroup/ops.ts";
import { traceCall } from "../output/trace.ts";
/** `gcr pause ID`: freezes every process of the container (cgroup freezer). */
export async function pauseCommand(args: readonly string[]): Promise<number> {
  const found = freezerOf(oneId(parseFlags(args, {}, {}, "pause").rest, "pause"), "running");
  const cgroup = ownCgroup(found.record);
  traceCall(showCgroupOp(freezerOp(cgroup, true)));
  await freeze(cgroup);
  updateRecord(found.paths, { status: "paused" });
  return 0;
}
