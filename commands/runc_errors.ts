/**
 * runc's error wording and exit statuses, for the verbs engines drive. The
 * engines tell "already gone" from a failure by runc's words: containerd's
 * runc shim takes a kill that says `container not running` or `no such
 * process` as done and a delete that says `does not exist` as done (and
 * retries anything else, which is how a pod's stop came to hang until its
 * deadline); podman takes a `state` that says `does not exist` as a
 * container that has exited. runc exits 1 on every error of these verbs,
 * and 255 when exec could not start the process.
 *
 * @module
 */
import { UsageError } from "./usage.ts";

/** runc's libcontainer errors, word for word: engines match on them. */
export const RUNC = {
  notExist: "container does not exist",
  notRunning: "container not running",
  notPaused: "container not paused",
} as const;

/** An error that ends gcr with runc's exit status for it. */
export class RuncError extends Error {
  override name = "RuncError";
  constructor(message: string, readonly exitCode: number, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Runs a verb in runc's form: any error it ends with (a usage error too,
 * as runc's command line gives them) exits with `exitCode`, its message as
 * is. Programming errors (TypeError, RangeError) still show their stack.
 */
export async function asRunc(
  exitCode: number,
  verb: () => number | Promise<number>,
  prefix = "",
): Promise<number> {
  try {
    return await verb();
  } catch (error) {
    if (error instanceof RuncError || !(error instanceof Error)) throw error;
    if (error instanceof TypeError || error instanceof RangeError) throw error;
    const message = error instanceof UsageError ? `${error.message} (see: gcr help)` : error.message;
    throw new RuncError(prefix + message, exitCode, { cause: error });
  }
}
