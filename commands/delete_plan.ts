/**
 * The delete plan: what `gcr delete` does to a stopped container, as data,
 * in the container's runtime folder beside its record (`delete.plan`).
 *
 * Engines delete every container once it has stopped (podman, containerd's
 * shim, CRI), and a Deno start-up is most of what that delete cost. So
 * create writes the plan, and ./gcr (launch/gcr.S) runs it without
 * starting Deno. `gcr delete` under Deno runs the same file, with each op
 * in the trace (--trace-dir), and is where ./gcr goes whenever the plan
 * does not cover what it finds: a process left in the cgroup, an init pid
 * that exists (alive, or a recycled pid, which only the record's start
 * time tells apart), a file the plan does not list, any other option.
 *
 * A container gets a plan only when its delete is nothing but these ops:
 * no poststop hooks to run, no mounts in the host's namespace to detach.
 *
 * The file: `gcr-delete-plan 1` and a NUL, then one field per op, each a
 * letter and an absolute path (no `/.` in it), NUL-terminated:
 *
 *   G  /proc/<init pid>: must not exist (the container has stopped).
 *   C  one of the container's cgroup folders: removed, or already gone;
 *      anything else (EBUSY: a process is still in it) stops the plan.
 *   P  a folder made for the container's cgroup, or the shared `gcr`
 *      folder: removed if empty; an error is no error (others use it).
 *   F  a file in the runtime folder: removed, or already gone, else stop.
 *   D  the runtime folder: removed, or already gone, else stop (a file
 *      the plan does not list is in it).
 *
 * Every op is one system call that may be repeated: a plan stopped midway
 * leaves what `gcr delete` then finishes.
 *
 * @module
 */
import { gcrParents, recordedCgroup } from "../cgroup/remove.ts";
import { traceCall } from "../output/trace.ts";
import { errorCode } from "../cgroup/ops.ts";
import type { ContainerPaths } from "../state/paths.ts";
import type { ContainerRecord } from "../state/records.ts";
import { writeFileAtomically } from "../host/files.ts";

/** The file's first field: the format, which ./gcr checks byte for byte. */
export const DELETE_PLAN_HEADER = "gcr-delete-plan 1";

export type DeleteOpKind = "G" | "C" | "P" | "F" | "D";

export interface DeleteOp {
  readonly op: DeleteOpKind;
  readonly path: string;
}

/** Where a container's plan lives. */
export function deletePlanPath(paths: ContainerPaths): string {
  return `${paths.run}/delete.plan`;
}

/** A path the plan may hold: absolute, and without `/.` (so no `..` and no hidden folder). */
function planPath(path: string): boolean {
  return path.startsWith("/") && !path.includes("/.") && !path.includes("\0");
}

/**
 * The plan for a created container (its record as create leaves it), or
 * undefined when deleting it takes more than the ops above.
 */
export function deletePlan(record: ContainerRecord, paths: ContainerPaths): DeleteOp[] | undefined {
  if (record.initPid === undefined || record.hooks?.poststop?.length || record.hostMounts?.length) return undefined;
  const { own, created } = recordedCgroup(record.cgroups ?? []);
  // Deepest first, as removeIfEmpty takes them: a parent empties only once its child is gone.
  const parents = [...created, ...gcrParents(own)].sort((a, b) => b.length - a.length);
  const ops: DeleteOp[] = [
    { op: "G", path: `/proc/${record.initPid}` },
    ...own.map((path) => ({ op: "C" as const, path })),
    ...parents.map((path) => ({ op: "P" as const, path })),
    // The record last but the plan: a plan stopped before it leaves the record for delete to find.
    ...[
      paths.startFifo,
      paths.reportFifo,
      paths.startPlan,
      paths.started,
      paths.startReport,
      paths.record,
      deletePlanPath(paths),
    ].map((path) => ({
      op: "F" as const,
      path,
    })),
    { op: "D", path: paths.run },
  ];
  return ops.every((op) => planPath(op.path)) ? ops : undefined;
}

/** Writes the plan beside the record (replacing one there). */
export function writeDeletePlan(paths: ContainerPaths, ops: readonly DeleteOp[]): void {
  const fields = [DELETE_PLAN_HEADER, ...ops.map((op) => `${op.op}${op.path}`)];
  writeFileAtomically(deletePlanPath(paths), fields.map((field) => `${field}\0`).join(""), 0o600);
}

/** The container's plan as create wrote it, or undefined when it has none (or one this gcr does not read). */
export function readDeletePlan(paths: ContainerPaths): DeleteOp[] | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(deletePlanPath(paths));
  } catch {
    return undefined;
  }
  const fields = text.split("\0");
  if (fields.shift() !== DELETE_PLAN_HEADER || fields.pop() !== "") return undefined;
  if (!fields.every((field) => field.length > 1 && "GCPFD".includes(field[0]!))) return undefined;
  const ops = fields.map((field) => ({ op: field[0] as DeleteOpKind, path: field.slice(1) }));
  return ops.every((op) => planPath(op.path)) ? ops : undefined;
}

/**
 * Runs the plan's ops after G (the caller has found the container stopped
 * by its record, which knows the init's start time), each traced. Returns
 * "done", or the op it stopped at; what is left is then the caller's.
 */
export function runDeletePlan(ops: readonly DeleteOp[]): "done" | DeleteOp {
  for (const op of ops) {
    if (op.op === "G") continue;
    const call = op.op === "F" ? "unlink" : "rmdir";
    try {
      Deno.removeSync(op.path);
      traceCall(`${call}(${op.path}) = 0`);
    } catch (error) {
      const code = error instanceof Deno.errors.NotFound ? "ENOENT" : errorCode(error);
      traceCall(`${call}(${op.path}) = ${code}${op.op === "P" ? " (in use or gone: left)" : ""}`);
      if (op.op !== "P" && code !== "ENOENT") return op;
    }
  }
  return "done";
}
