/**
 * gcr-monitor, a detached container's parent while it runs (its source and
 * why: monitor.S), in a sealed memfd that `gcr run -d` executes.
 *
 * @module
 */
import { MONITOR_CODE } from "./monitor_code.ts";
import { elfProgram, sealedProgram } from "./native_program.ts";

/** Its name in ps, and the memfd's in /proc/<pid>/fd. */
export const MONITOR_NAME = "gcr-monitor";

/** The monitor as an ELF executable. */
export function monitorElf(): Uint8Array {
  return elfProgram(MONITOR_CODE);
}

/** A new sealed, close-on-exec memfd holding the monitor. */
export function sealedMonitor(): number {
  return sealedProgram(MONITOR_NAME, MONITOR_CODE);
}
