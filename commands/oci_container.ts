/**
 * What the OCI verbs (create, start, state, kill, delete, pause, resume, ps,
 * exec) share: a container by its id, with runc's wording when it does not
 * exist (engines match on it), its processes, and its own cgroup.
 *
 * @module
 */

import type { FoundContainer } from "../state/containers.ts";
import { CONTAINER_ID, containerPaths } from "../state/paths.ts";
import { type ContainerRecord, readRecord } from "../state/records.ts";
import { exists } from "../host/files.ts";
import { sameProcess } from "../state/processes.ts";
import { UsageError } from "./usage.ts";
import { RUNC } from "./runc_errors.ts";
import type { HookState } from "../steps/hook_process.ts";
import { warn } from "../output/runtime_log.ts";
import { traceContainer } from "../output/trace.ts";

/** The one container id a verb takes; a valid one opens the container's trace file (--trace-dir). */
export function oneId(rest: readonly string[], command: string): string {
  if (rest.length !== 1) throw new UsageError(`gcr ${command} takes one container id (got ${rest.length})`);
  if (CONTAINER_ID.test(rest[0]!)) traceContainer(rest[0]!);
  return rest[0]!;
}

/**
 * The container whose id is exactly `id` (engines' ids: never a name or a
 * prefix, as `gcr rm` takes them, which would let `delete abc` reach
 * `abcdef…`), with its record; runc's wording when there is none.
 */
export function ociContainer(id: string): FoundContainer & { record: ContainerRecord } {
  const found = ociFolder(id);
  if (!found?.record) throw new Error(RUNC.notExist);
  return found as FoundContainer & { record: ContainerRecord };
}

/** The runtime folder of exactly `id`, with its record if it has one (a create killed early leaves none). */
export function ociFolder(id: string): FoundContainer | undefined {
  if (!CONTAINER_ID.test(id)) return undefined;
  traceContainer(id);
  const paths = containerPaths(id);
  if (!exists(paths.run) && !exists(paths.dir)) return undefined;
  const record = readRecord(paths);
  return record ? { id, paths, record } : { id, paths };
}

/** The container's processes (host pids): its cgroup's, or just its first process. */
export function containerPids(record: ContainerRecord): number[] {
  const procs = record.exec?.cgroupProcs ?? [];
  for (const file of procs) {
    try {
      return Deno.readTextFileSync(file).split("\n").filter(Boolean).map(Number);
    } catch { /* try the next hierarchy */ }
  }
  return sameProcess(record.initPid, record.initStart) ? [record.initPid!] : [];
}

/** The state a hook of this container reads on stdin (runtime.md, "State"). */
export function hookState(record: ContainerRecord, status: HookState["status"]): HookState {
  return {
    id: record.id,
    status,
    pid: record.initPid ?? 0,
    bundle: record.bundle ?? "",
    annotations: record.annotations ?? {},
  };
}

/**
 * The hooks after which the container goes on as it is: poststart, once
 * the command runs (start), and poststop, once the container is gone
 * (delete, or a create that failed). A failing one is a warning in --log
 * and the others still run (runtime-spec 1.2).
 */
export async function runLateHooks(record: ContainerRecord, kind: "poststart" | "poststop"): Promise<void> {
  const hooks = record.hooks?.[kind] ?? [];
  if (!hooks.length) return;
  const { runHook } = await import("../runner/hooks.ts");
  const state = hookState(record, kind === "poststart" ? "running" : "stopped");
  for (const [index, hook] of hooks.entries()) {
    try {
      await runHook(kind, index, hook, state, { in: "runtime", cwd: record.bundle ?? "/" });
    } catch (error) {
      warn((error as Error).message);
    }
  }
}
