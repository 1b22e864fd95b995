/**
 * The error of a step that failed, in a module of its own: main.ts maps it
 * to gcr's exit status without loading the runner, which the verbs that run
 * no steps (state, kill, start, delete) do not need.
 *
 * @module
 */

/** A step that failed; `exitCode` is what gcr exits with (125, or 126/127 for exec). */
export class StepError extends Error {
  readonly step: string;
  readonly exitCode: number;

  constructor(step: string, cause: Error, exitCode = 125) {
    super(`step ${step}: ${cause.message}`, { cause });
    this.name = "StepError";
    this.step = step;
    this.exitCode = exitCode;
  }
}
