/**
 * What `--trace` shows changing: the child as the kernel reports it in
 * /proc/<pid>, looked at from outside between steps.
 *
 * @module
 */

const NAMESPACES = ["user", "pid", "mnt", "uts", "ipc", "cgroup", "net"] as const;

/** A view of a process, taken from /proc. */
export interface Snapshot {
  readonly namespaces: Readonly<Record<string, string>>;
  readonly ids: string;
  readonly capabilities: string;
  readonly mounts: readonly string[];
  readonly fds: readonly string[];
  readonly cwd: string;
  readonly processGroup: string;
}

function read(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function link(path: string): string {
  try {
    return Deno.readLinkSync(path);
  } catch {
    return "?";
  }
}

function field(status: string, name: string): string {
  return status.match(new RegExp(`^${name}:\\s*(.*)$`, "m"))?.[1]?.trim().replace(/\s+/g, " ") ?? "?";
}

/** Takes a snapshot of process `pid` ("self" for gcr itself). */
export function snapshot(pid: number | "self"): Snapshot {
  const dir = `/proc/${pid}`;
  const status = read(`${dir}/status`);
  let fds: string[] = [];
  try {
    fds = [...Deno.readDirSync(`${dir}/fd`)].map((e) => e.name).sort((a, b) => Number(a) - Number(b));
  } catch { /* gone */ }
  return {
    namespaces: Object.fromEntries(NAMESPACES.map((ns) => [ns, link(`${dir}/ns/${ns}`)])),
    ids: `uid ${field(status, "Uid").split(" ")[0]} gid ${field(status, "Gid").split(" ")[0]} (host), pid ${
      field(status, "NSpid").replace(/ /g, " → ")
    }`,
    capabilities: field(status, "CapEff"),
    // Mount point, filesystem type, source and options identify a mount.
    mounts: read(`${dir}/mountinfo`).split("\n").filter(Boolean).map((line) => {
      const [left = "", right = ""] = line.split(" - ");
      const f = left.split(" ");
      const [fstype, source] = right.split(" ");
      return `${f[4]} ${fstype} ${source} ${f[5]}`;
    }),
    fds,
    cwd: link(`${dir}/cwd`),
    processGroup: read(`${dir}/stat`).replace(/^.*\) /s, "").split(" ")[2] ?? "?",
  };
}

/** Lines describing what changed from `before` to `after`; `limit` caps long lists. */
export function changes(before: Snapshot, after: Snapshot, limit = 8): string[] {
  const lines: string[] = [];
  for (const ns of NAMESPACES) {
    if (before.namespaces[ns] !== after.namespaces[ns]) {
      lines.push(`namespace ${ns}: ${before.namespaces[ns]} → ${after.namespaces[ns]}`);
    }
  }
  if (before.ids !== after.ids) lines.push(`ids: ${after.ids}`);
  if (before.capabilities !== after.capabilities) lines.push(`effective capabilities: ${after.capabilities}`);
  if (before.cwd !== after.cwd) lines.push(`cwd: ${after.cwd}`);
  if (before.processGroup !== after.processGroup) lines.push(`process group: ${after.processGroup}`);
  if (before.fds.join() !== after.fds.join()) lines.push(`open fds: ${after.fds.join(" ")}`);
  const had = new Set(before.mounts);
  const has = new Set(after.mounts);
  const added = after.mounts.filter((m) => !had.has(m));
  const removed = before.mounts.filter((m) => !has.has(m));
  for (const [sign, list] of [["+", added], ["-", removed]] as const) {
    list.slice(0, limit).forEach((m) => lines.push(`${sign} mount ${m}`));
    if (list.length > limit) lines.push(`${sign} … ${list.length - limit} more mounts (${after.mounts.length} now)`);
  }
  return lines;
}
