import { MNT_DETACH } from "../ffi/constants.ts";
import { call, num, type Step } from "./step.ts";

/**
 * Unmounts the host's root, which pivot_root left stacked on "/". After
 * this nothing of the host's filesystem is reachable from the container.
 */
export function detachOldRoot(): Step {
  return {
    name: "detach-old-root",
    why: "the host's filesystem, still mounted over the new root, must become unreachable",
    parent: [],
    child: [call("umount2", ".", num(MNT_DETACH, "MNT_DETACH")), call("chdir", "/")],
  };
}
