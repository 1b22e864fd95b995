/**
 * `gcr resume`: thaws a paused container.
 *
 * @module
 */

import { parseFlags } from "./flags.ts";
import { oneId } from "./oci_container.ts";
import { freezerOf, thawContainer } from "./oci_cgroup.ts";

/** `gcr resume ID`: thaws a paused container. */
export function resumeCommand(args: readonly string[]): number {
  thawContainer(freezerOf(oneId(parseFlags(args, {}, {}, "resume").rest, "resume"), "paused"));
  return 0;
}
