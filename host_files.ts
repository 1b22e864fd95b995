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
