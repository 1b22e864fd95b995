/**
 * config.json's rootfsPropagation for the container's /.
 *
 * @module
 */

import { showMountFlags } from "./in_root.ts";
import { call, NULL, num, type Step } from "./step.ts";

/** rootfsPropagation: the propagation of the container's / after the pivot. */
export function rootPropagation(propagation: number): Step {
  return {
    name: "root-propagation",
    why: "config.json's rootfsPropagation for the container's /",
    parent: [],
    child: [call("mount", NULL, "/", NULL, num(propagation, showMountFlags(propagation)), NULL)],
  };
}
