/**
 * What `--trace` shows changing: the child as the kernel reports it in
 * /proc/<pid>, looked at from outside between steps.
 *
 * @module
 */
import { readTextOr } from "../host/files.ts";

const NAMESPACES = ["user", "pid", "mnt", "uts", "ipc", "cgroup", "net"] as const;

/**
 * A view of a process, taken from /proc. `null`: gcr may not look (the
 * child is non-dumpable, and gcr, not root, lacks CAP_SYS_PTRACE); its
 * status and mountinfo stay readable.
 */
export interface Snapshot {
  readonly namespaces: Readonly<Record<string, string | null>>;
  readonly ids: string;
  readonly capabilities: string;
  /** Mount id → "mount point, type, source, options". */
  readonly mounts: ReadonlyMap<string, { readonly at: string; readonly what: string }>;
  readonly fds: readonly string[] | null;
  readonly cwd: string | null;
  readonly processGroup: string;
}

function link(path: string): string | null {
  try {
    return Deno.readLinkSync(path);
  } catch (error) {
    return error instanceof Deno.errors.PermissionDenied ? null : "?";
  }
}

function field(status: string, name: string): string {
  return status.match(new RegExp(`^${name}:\\s*(.*)$`, "m"))?.[1]?.trim().replace(/\s+/g, " ") ?? "?";
}

/** Takes a snapshot of process `pid` ("self" for gcr itself). */
export function snapshot(pid: number | "self"): Snapshot {
  const dir = `/proc/${pid}`;
  const status = readTextOr(`${dir}/status`);
  let fds: string[] | null = [];
  try {
    fds = [...Deno.readDirSync(`${dir}/fd`)].map((e) => e.name).sort((a, b) => Number(a) - Number(b));
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) fds = null;
  }
  return {
    namespaces: Object.fromEntries(NAMESPACES.map((ns) => [ns, link(`${dir}/ns/${ns}`)])),
    ids: `uid ${field(status, "Uid").split(" ")[0]} gid ${field(status, "Gid").split(" ")[0]} (host), pid ${
      field(status, "NSpid").replace(/ /g, " → ")
    }`,
    capabilities: field(status, "CapEff"),
    // The mount id (first field) follows a mount when pivot_root moves it.
    mounts: new Map(
      readTextOr(`${dir}/mountinfo`).split("\n").filter(Boolean).map((line) => {
        const [left = "", right = ""] = line.split(" - ");
        const f = left.split(" ");
        const [fstype, source] = right.split(" ");
        return [f[0] ?? "", { at: f[4] ?? "?", what: `${fstype} ${source} ${f[5]}` }];
      }),
    ),
    fds,
    cwd: link(`${dir}/cwd`),
    processGroup: readTextOr(`${dir}/stat`).replace(/^.*\) /s, "").split(" ")[2] ?? "?",
  };
}

/** Lines describing what changed from `before` to `after`; `limit` caps long lists. */
export function changes(before: Snapshot, after: Snapshot, limit = 8): string[] {
  const lines: string[] = [];
  const hidden = after.cwd === null && before.cwd !== null;
  if (hidden) {
    lines.push("its namespaces, fds and cwd are hidden from gcr from here: the child is non-dumpable");
  }
  for (const ns of NAMESPACES) {
    const [was, is] = [before.namespaces[ns], after.namespaces[ns]];
    if (is !== null && was !== is) lines.push(`namespace ${ns}: ${was} → ${is}`);
  }
  if (before.ids !== after.ids) lines.push(`ids: ${after.ids}`);
  if (before.capabilities !== after.capabilities) lines.push(`effective capabilities: ${after.capabilities}`);
  if (after.cwd !== null && before.cwd !== after.cwd) lines.push(`cwd: ${after.cwd}`);
  if (before.processGroup !== after.processGroup) lines.push(`process group: ${after.processGroup}`);
  if (after.fds !== null && before.fds?.join() !== after.fds.join()) lines.push(`open fds: ${after.fds.join(" ")}`);
  const added = [...after.mounts].filter(([id]) => !before.mounts.has(id)).map(([, m]) => m);
  const removed = [...before.mounts].filter(([id]) => !after.mounts.has(id)).map(([, m]) => m);
  const moved = [...after.mounts].flatMap(([id, m]) => {
    const was = before.mounts.get(id);
    return was && was.at !== m.at ? [{ from: was.at, to: m.at }] : [];
  });
  const list = (sign: string, mounts: { at: string; what: string }[]) => {
    mounts.slice(0, limit).forEach((m) => lines.push(`${sign} mount ${m.at} ${m.what}`));
    if (mounts.length > limit) lines.push(`${sign} … ${mounts.length - limit} more mounts`);
  };
  list("+", added);
  list("-", removed);
  if (moved.length > 0) {
    const first = moved[0]!;
    lines.push(
      `mounts now seen from a new root: ${moved.length} moved, e.g. ${first.from} → ${first.to}` +
        ` (${after.mounts.size} mounts in all)`,
    );
  }
  return lines;
}
