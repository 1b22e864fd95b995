import { F_OK, MS } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { call, flags, NULL, type Step } from "./step.ts";

/** Docker's masked paths (moby `oci/defaults.go`): kernel state a container must not read. */
export const MASKED_PATHS: readonly string[] = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** What a path is on the host: a directory, something else, or nothing. */
export type PathKind = "directory" | "file" | undefined;

/**
 * The kind of `path` on the host. The chain cannot branch on a failed
 * mount, so gcr decides here which paths exist. The host's answer is the
 * container's: its /proc and /sys are fresh mounts of the same kernel (the
 * entries masked here are not per-namespace), or with `--net host` the
 * host's very /sys, bound.
 */
export function hostPathKind(path: string): PathKind {
  // access(2) per path and the kinds Linux gives these entries, rather than
  // a Deno.statSync each: the stats cost ~0.15 ms apiece at start-up.
  const known = KNOWN_KINDS.get(path);
  if (known) return libc().access(new TextEncoder().encode(path + "\0"), F_OK) === 0 ? known : undefined;
  try {
    return Deno.statSync(path).isDirectory ? "directory" : "file";
  } catch {
    return undefined;
  }
}

/** What the kernel makes of each masked and read-only path, where it has one. */
const KNOWN_KINDS = new Map<string, "directory" | "file">([
  ["/proc/asound", "directory"],
  ["/proc/acpi", "directory"],
  ["/proc/scsi", "directory"],
  ["/sys/firmware", "directory"],
  ["/sys/devices/virtual/powercap", "directory"],
  ["/proc/bus", "directory"],
  ["/proc/fs", "directory"],
  ["/proc/irq", "directory"],
  ["/proc/sys", "directory"],
  ...["/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug"]
    .map((path) => [path, "file"] as [string, "file"]),
  ["/proc/sysrq-trigger", "file"],
]);

/**
 * Hides kernel state from the container, as Docker does: a file gets the
 * container's /dev/null bound over it (reads return nothing), a directory a
 * read-only empty tmpfs. Paths this kernel (or the image) lacks are left
 * out, and so are paths below a folder masked before them.
 *
 * Done after detach-old-root, on the container's own paths: /proc and /sys
 * are then the container's fresh mounts, /dev/null is the one bind-devices
 * put in, and nothing is resolved through the host's tree or the image's
 * symlinks (the image cannot put symlinks inside a mounted proc or sysfs).
 * It needs CAP_SYS_ADMIN, so it goes before drop-capabilities; runc masks
 * at the same point.
 */
export function maskPaths(paths: readonly string[] = MASKED_PATHS, kindOf = hostPathKind): Step {
  // A path below a folder already masked is hidden by its empty tmpfs, and
  // no longer there to mount on (runc skips it as absent).
  const hidden: string[] = [];
  const child = paths.flatMap((path) => {
    if (hidden.some((dir) => path.startsWith(`${dir}/`))) return [];
    const kind = kindOf(path);
    if (kind === "directory") hidden.push(path.replace(/\/+$/, ""));
    const mask = kind === "directory"
      ? call("mount", "tmpfs", path, "tmpfs", flags(MS, "MS_", ["RDONLY"]), NULL)
      : kind === "file"
      ? call("mount", "/dev/null", path, NULL, flags(MS, "MS_", ["BIND"]), NULL)
      : undefined;
    // Each mask only takes a path from view: a plain run reports them once (ffi/chain.ts).
    return mask ? [{ ...mask, takesAway: true }] : [];
  });
  return {
    name: "mask-paths",
    why: "kernel state (/proc/kcore, /proc/keys, /sys/firmware, …) is hidden: /dev/null over files, " +
      "an empty read-only tmpfs over folders; after the pivot, before drop-capabilities",
    parent: [],
    child,
  };
}
