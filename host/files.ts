/**
 * Looking at the host's files where "absent" is an answer, not an error.
 *
 * @module
 */

/** A path's details, or undefined when it does not exist; symlinks are not followed unless `follow`. */
export function pathInfo(path: string, follow = false): Deno.FileInfo | undefined {
  try {
    return follow ? Deno.statSync(path) : Deno.lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Whether something (a dangling symlink too) is at `path`. */
export function exists(path: string): boolean {
  return pathInfo(path) !== undefined;
}

/** A text file's content, or `fallback` when it cannot be read. */
export function readTextOr(path: string, fallback = ""): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

/**
 * `node:path`'s `resolve` for POSIX paths: each part against the ones before
 * it, from the working directory, with `.` and `..` folded. By hand because
 * loading node:path costs ~15 ms of a start (it brings Node's assert and
 * error modules), which engines pay on every `gcr create`.
 */
export function resolvePath(...parts: string[]): string {
  let path = Deno.cwd();
  for (const part of parts) path = part.startsWith("/") ? part : `${path}/${part}`;
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  return "/" + out.join("/");
}

/**
 * Writes `text` to a temporary file beside `path` and renames it over
 * `path`: a reader (or a gcr killed meanwhile) sees the old file or the new
 * one, never half of one.
 */
export function writeFileAtomically(path: string, text: string, mode: number): void {
  const temporary = `${path}.tmp-${Deno.pid}`;
  Deno.writeTextFileSync(temporary, text, { mode });
  Deno.renameSync(temporary, path);
}

/**
 * Removes a tree that may hold folders the container made unreadable to
 * its owner (overlay's work/work is mode 000): each folder is opened up
 * before it is emptied. Rootless, files owned by the container's other ids
 * (subordinate uids) cannot be removed by the caller: those are removed in a
 * user namespace with the same mapping (`unshare --map-auto`).
 */
export function removeTree(path: string): void {
  // One call first (~15 fewer calls for a container's folders with --rm): it
  // fails only on a folder closed to its owner, which the walk opens up.
  try {
    Deno.removeSync(path, { recursive: true });
    return;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !exists(path)) return;
  }
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
