/**
 * `gcr resume`: thaws a paused container.
 *
 * @module
 */

import { updateRecord } from "../state/records.ts";
import { parseFlags } from "./flags.ts";
import { freezerOf, oneId, ownCgroup } from "./oci_container.ts";

import { thaw } from "../cgroup/container_cgroup.ts";
/** `gcr resume ID`: thaws a paused container. */
export function resumeCommand(args: readonly string[]): number {
  const found = freezerOf(oneId(parseFlags(args, {}, {}, "resume").rest, "resume"), "paused");
  thaw(ownCgroup(found.record));
  updateRecord(found.paths, { status: "running" });
  return 0;
}
