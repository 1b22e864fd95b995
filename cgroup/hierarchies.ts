/**
 * What the host mounts for cgroups, read from /proc/self/mountinfo and
 * /proc/self/cgroup: cgroup v2 alone (one unified hierarchy), or cgroup v1
 * hierarchies (one per set of controllers), possibly with a cgroup2 mount
 * beside them (hybrid); each with the caller's cgroup in it, where gcr puts
 * its containers' cgroups.
 *
 * @example
 * ```ts
 * const host = detectCgroups();
 * if (host.version === 1) console.log(host.hierarchies.map((h) => h.controllers.join(",")));
 * ```
 *
 * @module
 */

/** The v1 controllers whose hierarchies a container joins (cpuacct for the CPU usage it reports). */
export const V1_CONTROLLERS = ["memory", "cpu", "cpuacct", "pids"] as const;

/** One cgroup v1 hierarchy as mounted, with the caller's cgroup in it. */
export interface V1Hierarchy {
  /** Controllers bound to it, e.g. `["cpu", "cpuacct"]` or `["name=systemd"]`. */
  readonly controllers: readonly string[];
  /** Where it is mounted, e.g. `/sys/fs/cgroup/memory`. */
  readonly mount: string;
  /** The caller's cgroup, as a folder: mount point + the path from /proc/self/cgroup. */
  readonly dir: string;
}

/** A cgroup v2 (unified) hierarchy as mounted, with the caller's cgroup in it. */
export interface V2Hierarchy {
  readonly version: 2;
  readonly mount: string;
  /** The caller's cgroup, as a folder. */
  readonly dir: string;
}

/** What the host mounts: v2 alone, or v1 hierarchies (hybrid: with a v2 one beside them). */
export type CgroupHost =
  | V2Hierarchy
  | { readonly version: 1; readonly hierarchies: readonly V1Hierarchy[]; readonly unified?: V2Hierarchy };

/** Limits cannot be set up here; the message says why and what would allow them. */
export class CgroupUnavailableError extends Error {
  override name = "CgroupUnavailableError";
}

interface Mount {
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function _unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function _parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (separator < 6) continue;
    mounts.push({
      root: _unescape(fields[3]!),
      mountPoint: _unescape(fields[4]!),
      fsType: fields[separator + 1] ?? "",
      superOptions: (fields[separator + 3] ?? "").split(","),
    });
  }
  return mounts;
}

/** `/proc/self/cgroup`: hierarchy id → (controllers, path); v2 is `0::/path`. */
function _parseProcCgroup(text: string): { controllers: string[]; path: string }[] {
  return text.split("\n").filter((line) => line.trim()).map((line) => {
    const [, controllers = "", ...path] = line.split(":");
    return { controllers: controllers ? controllers.split(",") : [], path: path.join(":") };
  });
}

/**
 * The caller's cgroup as a folder: the mount shows the hierarchy from
 * `root`, so the path from /proc/self/cgroup is taken relative to it.
 * Undefined when the caller's cgroup is outside what the mount shows.
 */
function _cgroupDir(mount: Mount, path: string): string | undefined {
  const root = mount.root === "/" ? "" : mount.root;
  if (path !== root && !path.startsWith(root + "/")) return undefined;
  const relative = path.slice(root.length).replace(/^\/+/, "");
  return relative ? `${mount.mountPoint}/${relative}` : mount.mountPoint;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/**
 * What the host mounts, from /proc/self/mountinfo and /proc/self/cgroup
 * (pass their text to detect another host's layout). v1 wins when a v1
 * hierarchy holds one of the controllers gcr uses (hybrid hosts); v2
 * otherwise.
 */
export function detectCgroups(mountinfo?: string, procCgroup?: string): CgroupHost {
  if (mountinfo !== undefined || procCgroup !== undefined) {
    return _detect(
      mountinfo ?? Deno.readTextFileSync("/proc/self/mountinfo"),
      procCgroup ?? Deno.readTextFileSync("/proc/self/cgroup"),
    );
  }
  // Once per process (~1 ms): gcr does not move between cgroups, nor remount them, while it runs.
  return _thisHost ??= _detect(
    Deno.readTextFileSync("/proc/self/mountinfo"),
    Deno.readTextFileSync("/proc/self/cgroup"),
  );
}

let _thisHost: CgroupHost | undefined;

function _detect(mountinfo: string, procCgroup: string): CgroupHost {
  const mounts = _parseMountinfo(mountinfo);
  const memberships = _parseProcCgroup(procCgroup);
  const v2Path = memberships.find((m) => m.controllers.length === 0)?.path;
  let unified: V2Hierarchy | undefined;
  const hierarchies: V1Hierarchy[] = [];
  for (const mount of mounts) {
    if (mount.fsType === "cgroup2" && !unified && v2Path !== undefined) {
      const dir = _cgroupDir(mount, v2Path);
      if (dir) unified = { version: 2, mount: mount.mountPoint, dir };
    } else if (mount.fsType === "cgroup") {
      const membership = memberships.find((m) =>
        m.controllers.length > 0 && m.controllers.every((c) => mount.superOptions.includes(c))
      );
      if (!membership || hierarchies.some((h) => sameSet(h.controllers, membership.controllers))) continue;
      const dir = _cgroupDir(mount, membership.path);
      if (dir) hierarchies.push({ controllers: membership.controllers, mount: mount.mountPoint, dir });
    }
  }
  const usesV1 = hierarchies.some((h) => h.controllers.some((c) => (V1_CONTROLLERS as readonly string[]).includes(c)));
  if (usesV1 || !unified) return unified ? { version: 1, hierarchies, unified } : { version: 1, hierarchies };
  return unified;
}
