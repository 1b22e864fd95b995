/**
 * `gcr resume`: thaws a paused container.
 *
 * @module
 */

import { updateRecord } from "../state/records.ts";
import { parseFlags } from "./flags.ts";
import { oneId } from "./oci_container.ts";
import { freezerOf, ownCgroup } from "./oci_cgroup.ts";

import { freezerOp, thaw } from "../cgroup/container_cgroup.ts";
import { showCgroupOp } from "../cgroup/ops.ts";
import { traceCall } from "../output/trace.ts";
/** `gcr resume ID`: thaws a paused container. */
export function resumeCommand(args: readonly string[]): number {
  const found = freezerOf(oneId(parseFlags(args, {}, {}, "resume").rest, "resume"), "paused");
  const cgroup = ownCgroup(found.record);
  traceCall(showCgroupOp(freezerOp(cgroup, false)));
  thaw(cgroup);
  updateRecord(found.paths, { status: "running" });
  return 0;
}
