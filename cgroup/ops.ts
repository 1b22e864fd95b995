/**
 * The ops: the plain steps (mkdir, write) that make and limit a cgroup,
 * which a plan lists, `--trace` and `explain` show, and gcr runs; one
 * shape, so that what is shown is what is done.
 *
 * @example
 * ```ts
 * const op: CgroupOp = { op: "write", path: `${dir}/pids.max`, content: "50" };
 * console.log(showCgroupOp(op)); // write …/pids.max: 50
 * runCgroupOp(op);
 * ```
 *
 * @module
 */
import { pathInfo } from "../host/files.ts";

/** One thing gcr does to the cgroup file system; a plan is a list of these. */
export type CgroupOp =
  /** `existing: "ok"` for the shared `gcr` folder; a container's own folder must be new. */
  | { readonly op: "mkdir"; readonly path: string; readonly existing: "ok" | "error" }
  /** `ifPresent`: a file the kernel offers only with some options (swap accounting). */
  | { readonly op: "write"; readonly path: string; readonly content: string; readonly ifPresent?: boolean };

/** How an op is shown in trace and explain: `write /sys/…/memory.limit_in_bytes: 67108864`. */
export function showCgroupOp(op: CgroupOp): string {
  switch (op.op) {
    case "mkdir":
      return `mkdir ${op.path}${op.existing === "ok" ? " (if missing)" : ""}`;
    case "write":
      return `write ${op.path}: ${op.content}${op.ifPresent ? " (if the kernel offers it)" : ""}`;
  }
}

/** The errno's name (EEXIST) where Deno gives one, as the runner's errors show it. */
export function errorCode(error: unknown): string {
  return (error as { code?: string }).code ?? (error as Error).message;
}

/**
 * Runs one op; errors name the file, the content and the errno, as the
 * runner's do. Returns whether a mkdir made the folder (false when it
 * existed and that was allowed), so that only what gcr made is removed.
 */
export function runCgroupOp(op: CgroupOp): boolean {
  switch (op.op) {
    case "mkdir":
      // The shared folder is there for all but the first container: a look
      // is cheaper than the error Deno builds for mkdir's EEXIST.
      if (op.existing === "ok" && pathInfo(op.path)?.isDirectory) return false;
      try {
        Deno.mkdirSync(op.path, { mode: 0o755 });
        return true;
      } catch (error) {
        if (op.existing === "ok" && error instanceof Deno.errors.AlreadyExists) return false;
        throw new Error(`mkdir ${op.path}: ${errorCode(error)}`, { cause: error });
      }
    case "write":
      try {
        Deno.writeTextFileSync(op.path, op.content, { create: false });
      } catch (error) {
        if (op.ifPresent && error instanceof Deno.errors.NotFound) return false;
        throw new Error(`write ${op.path} ${JSON.stringify(op.content)}: ${errorCode(error)}`, { cause: error });
      }
      return false;
  }
}
