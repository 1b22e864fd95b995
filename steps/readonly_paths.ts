import { MS } from "../ffi/constants.ts";
import { hostPathKind } from "./mask_paths.ts";
import { call, flags, NULL, type Step } from "./step.ts";

/** Docker's read-only paths (moby `oci/defaults.go`): kernel knobs a container may read but not write. */
export const READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/**
 * Makes kernel knobs under /proc read-only: each path is bound onto itself
 * (a mount of its own) and that bind remounted read-only. The remount keeps
 * nosuid, nodev and noexec, which mount-proc set: a bind remount replaces
 * all per-mount flags, and leaving them out would clear them.
 *
 * After detach-old-root, on the container's own /proc, for the reasons
 * mask-paths gives; which paths exist is decided by gcr (hostPathKind).
 */
export function readonlyPaths(paths: readonly string[] = READONLY_PATHS, kindOf = hostPathKind): Step {
  const bind = flags(MS, "MS_", ["BIND", "REC"]);
  const remount = flags(MS, "MS_", ["BIND", "REMOUNT", "RDONLY", "NOSUID", "NODEV", "NOEXEC"]);
  return {
    name: "readonly-paths",
    why: "kernel knobs (/proc/sys, /proc/sysrq-trigger, …) stay readable but cannot be written; " +
      "after the pivot, before drop-capabilities",
    parent: [],
    child: paths.filter((path) => kindOf(path) !== undefined).flatMap((path) => [
      call("mount", path, path, NULL, bind, NULL),
      call("mount", path, path, NULL, remount, NULL),
    ]),
  };
}
