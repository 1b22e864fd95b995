/**
 * A signal as users and engines write it: a name (`TERM`, `SIGTERM`, `term`)
 * or a number (`15`).
 *
 * @module
 */
import { SIGNALS } from "../ffi/constants.ts";
import { UsageError } from "./usage.ts";

/** A signal by name (`TERM`, `SIGTERM`, `term`) or number (`15`), as kill(1) and runc take it. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    if (number >= 1 && number <= 64) return number;
  } else {
    const name = text.toUpperCase().replace(/^(SIG)?/, "SIG") as keyof typeof SIGNALS;
    if (name in SIGNALS) return SIGNALS[name];
  }
  throw new UsageError(`unknown signal ${JSON.stringify(text)} (a name such as TERM or KILL, or a number 1-64)`);
}
