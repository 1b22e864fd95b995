import { MS } from "../ffi/constants.ts";
import { call, flags, NULL, type Step } from "./step.ts";

/**
 * Stops mount events from propagating between the container and the host,
 * in both directions, before the first mount is made.
 */
export function makeMountsPrivate(): Step {
  return {
    name: "make-mounts-private",
    why:
      "the new mount namespace still shares propagation with the host; without this, container mounts could leak out",
    parent: [],
    child: [call("mount", NULL, "/", NULL, flags(MS, "MS_", ["REC", "PRIVATE"]), NULL)],
  };
}
