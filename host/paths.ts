/**
 * A path made absolute and normal (`.`, `..` and repeated slashes gone),
 * as node:path's resolve makes it for one path. Written here because
 * loading node:path costs Deno 7-10 ms of start-up (its Node compatibility
 * layer), which the verbs engines call for every container cannot afford.
 *
 * @module
 */

/** `path` made absolute against the working directory, then normalised; symlinks are not looked at. */
export function absolutePath(path: string): string {
  const full = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const parts: string[] = [];
  for (const part of full.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}
