/**
 * The start plan: create's word that starting this container is nothing
 * but opening its gate, so that ./gcr (launch/gcr.S, start_gate) starts it
 * without Deno, as it deletes one (commands/delete_plan.ts). Engines start
 * every container they create, and a Deno start-up was most of that.
 *
 * What ./gcr does is what `gcr start` does without hooks, call for call
 * (`--trace-dir` shows them): open the report FIFO to read, write one byte
 * into the start FIFO, remove it, make the `started` file (the record's
 * status and start time: readRecord), then read the reports until the
 * container's command is exec'd. A report that is not 0 (the command
 * could not run), or no exec within EXEC_WAIT_MS, it writes to
 * `start.report` and hands over to Deno with the same arguments, whose
 * start says it as the log's warning (takeStartReport).
 *
 * A container gets a plan only when it has no startContainer or poststart
 * hooks. The plan holds for the record as create left it: any later write
 * of the record removes it (writeRecord), and without it ./gcr leaves the
 * start to Deno. So does a start FIFO that is gone (started already) or
 * that no one reads (the container's process is gone).
 *
 * The file: `gcr-start-plan 1` and a NUL, nothing else; ./gcr finds the
 * FIFOs and files by their names in the runtime folder (state/paths.ts).
 *
 * @module
 */
import { writeFileAtomically } from "../host/files.ts";
import type { ContainerPaths } from "../state/paths.ts";
import type { ContainerRecord } from "../state/records.ts";

/** The whole file, which ./gcr checks byte for byte. */
export const START_PLAN = "gcr-start-plan 1\0";

/**
 * How long start waits for the exec after opening the gate before it stops
 * waiting (a frozen container). ./gcr waits as long (launch/gcr.S).
 */
export const EXEC_WAIT_MS = 10_000;

/** Writes the plan for a created container (its record as create leaves it) when its start is only the gate. */
export function writeStartPlan(paths: ContainerPaths, record: ContainerRecord): void {
  const hooks = record.hooks ?? {};
  if (record.initPid === undefined || hooks.startContainer?.length || hooks.poststart?.length) return;
  writeFileAtomically(paths.startPlan, START_PLAN, 0o600);
}

/**
 * What ./gcr read from the report FIFO when it opened the gate and handed
 * the start over, removed as it is taken; undefined when there is none.
 */
export function takeStartReport(paths: ContainerPaths): Uint8Array | undefined {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(paths.startReport);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  Deno.removeSync(paths.startReport);
  return bytes;
}
