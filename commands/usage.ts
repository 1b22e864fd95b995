/**
 * The one error type of the command line: gcr prints it as
 * `gcr: <message> (see: gcr help)` and exits with 125.
 *
 * @module
 */

/** A problem with the command line: printed with a hint, exit status 125. */
export class UsageError extends Error {
  override name = "UsageError";
}
