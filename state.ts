/**
 * Containers' state on the host: one folder per container under the state
 * directory, holding the overlay's `upper` (everything the container wrote),
 * its `work` folder, the `merged` mount point and a small `container.json`.
 *
 *   /var/lib/gcr/containers/<id>/{upper,work,merged,container.json}   (root)
 *   $XDG_DATA_HOME/gcr/containers/<id>/…                              (rootless)
 *
 * `$GCR_STATE` overrides the state directory.
 *
 * @module
 */
import { MOUNT_POINTS } from "./rootfs.ts";
import { exists } from "./host_files.ts";

/** What `container.json` records. */
export interface ContainerRecord {
  id: string;
  image: string;
  /** The image folder: the overlay's read-only lower layer. */
  rootfs: string;
  command: string[];
  /** ISO 8601. */
  created: string;
  /** gcr's pid while it runs the container, and that process's start time (against pid reuse). */
  pid: number;
  pidStart: string;
  /** Set when the container has exited: its exit status as gcr reports it. */
  exitStatus?: number;
}

/** The state directory: $GCR_STATE, else /var/lib/gcr (root) or $XDG_DATA_HOME/gcr. */
export function stateDir(): string {
  const explicit = Deno.env.get("GCR_STATE");
  if (explicit) return explicit.startsWith("/") ? explicit : `${Deno.cwd()}/${explicit}`;
  if (Deno.uid() === 0) return "/var/lib/gcr";
  const data = Deno.env.get("XDG_DATA_HOME") || `${Deno.env.get("HOME") ?? "/"}/.local/share`;
  return `${data.replace(/\/+$/, "")}/gcr`;
}

/** Where one container's state lives. */
export interface ContainerPaths {
  dir: string;
  upper: string;
  work: string;
  merged: string;
  record: string;
}

export function containerPaths(id: string, state = stateDir()): ContainerPaths {
  const dir = `${state}/containers/${id}`;
  return { dir, upper: `${dir}/upper`, work: `${dir}/work`, merged: `${dir}/merged`, record: `${dir}/container.json` };
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined when there is no such process. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Writes `container.json` atomically: a temporary file renamed over it. */
export function writeRecord(paths: ContainerPaths, record: ContainerRecord): void {
  const temporary = `${paths.record}.tmp-${Deno.pid}`;
  Deno.writeTextFileSync(temporary, JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
  Deno.renameSync(temporary, paths.record);
}

export function readRecord(paths: ContainerPaths): ContainerRecord | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(paths.record)) as ContainerRecord;
  } catch {
    return undefined;
  }
}

/**
 * Makes the container's folders (mode 0700: what the container wrote is its
 * own) and the mount points the image lacks, in `upper`, never in the image.
 */
export function createContainerState(paths: ContainerPaths, record: ContainerRecord): void {
  Deno.mkdirSync(paths.dir.slice(0, paths.dir.lastIndexOf("/")), { recursive: true, mode: 0o700 });
  Deno.mkdirSync(paths.dir, { mode: 0o700 });
  for (const dir of [paths.upper, paths.work, paths.merged]) Deno.mkdirSync(dir, { mode: 0o755 });
  writeRecord(paths, record);
  for (const name of MOUNT_POINTS) {
    let present = false;
    try {
      Deno.lstatSync(`${record.rootfs}/${name}`);
      present = true;
    } catch { /* missing in the image */ }
    if (!present) Deno.mkdirSync(`${paths.upper}/${name}`, { mode: 0o755 });
  }
}

/**
 * Whether the container is still running: no exit status recorded, and the
 * gcr that runs it is alive (same pid, same start time).
 */
export function isRunning(record: ContainerRecord): boolean {
  if (record.exitStatus !== undefined) return false;
  return processStart(record.pid) === record.pidStart;
}

/**
 * Removes a tree that may hold folders the container made unreadable to
 * its owner (overlay's work/work is mode 000): each folder is opened up
 * before it is emptied. Rootless, files owned by the container's other ids
 * (subordinate uids) cannot be removed by the caller: those are removed in a
 * user namespace with the same mapping (`unshare --map-auto`).
 */
export function removeTree(path: string): void {
  const walk = (dir: string) => {
    try {
      Deno.chmodSync(dir, 0o700);
    } catch { /* not ours: removal below may still work */ }
    for (const entry of Deno.readDirSync(dir)) {
      const child = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(child);
      else Deno.removeSync(child);
    }
    Deno.removeSync(dir);
  };
  try {
    walk(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !exists(path)) return;
    if (Deno.uid() === 0) throw error;
    const result = new Deno.Command("unshare", {
      args: ["--map-root-user", "--map-auto", "rm", "-rf", "--", path],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!result.success || exists(path)) {
      throw new Error(`cannot remove ${path}: ${(error as Error).message}`);
    }
  }
}

/** Every container folder in the state directory, with its record when readable. */
export function listContainers(state = stateDir()): { id: string; paths: ContainerPaths; record?: ContainerRecord }[] {
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(`${state}/containers`)];
  } catch { /* no containers yet */ }
  return entries.filter((e) => e.isDirectory).map((e) => e.name).sort().map((id) => {
    const paths = containerPaths(id, state);
    const record = readRecord(paths);
    return record ? { id, paths, record } : { id, paths };
  });
}

/** `gcr rm <id>…`: removes stopped containers' folders; refuses running ones. Returns the exit status. */
export function rmCommand(ids: readonly string[]): number {
  if (ids.length === 0) throw new Error("gcr rm needs at least one container id");
  let status = 0;
  const all = listContainers();
  for (const id of ids) {
    const matches = all.filter((c) => c.id === id || (id.length >= 3 && c.id.startsWith(id)));
    if (!/^[0-9a-f]+$/.test(id) || matches.length !== 1) {
      console.error(`gcr: ${matches.length > 1 ? "ambiguous" : "no such"} container ${JSON.stringify(id)}`);
      status = 1;
      continue;
    }
    const found = matches[0]!;
    if (found.record && isRunning(found.record)) {
      console.error(`gcr: container ${found.id} is running (gcr pid ${found.record.pid}): not removed`);
      status = 1;
      continue;
    }
    removeTree(found.paths.dir);
    console.log(found.id);
  }
  return status;
}

/** `gcr prune`: removes every stopped container's folder and prints its id. */
export function pruneCommand(args: readonly string[]): number {
  if (args.length) throw new Error(`gcr prune takes no arguments (got ${args.join(" ")})`);
  for (const found of listContainers()) {
    if (found.record && isRunning(found.record)) continue;
    // A folder without a readable record is left by a gcr killed while it
    // was being made: no container runs from it.
    removeTree(found.paths.dir);
    console.log(found.id);
  }
  return 0;
}
