/**
 * config.json's root.readonly: / read-only once every mount is in place.
 *
 * @module
 */
import { MS } from "../ffi/constants.ts";
import { call, flags, NULL, type Step } from "./step.ts";

/** root.readonly: the container's / read-only, last, once nothing more is mounted on it. */
export function readonlyRoot(): Step {
  return {
    name: "readonly-root",
    why: "config.json's root.readonly: / becomes read-only once every mount is in place",
    parent: [],
    child: [call("mount", NULL, "/", NULL, flags(MS, "MS_", ["REMOUNT", "BIND", "RDONLY"]), NULL)],
  };
}
