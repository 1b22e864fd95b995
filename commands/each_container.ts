/**
 * Docker's rule for the verbs that take several containers (stop, kill, rm,
 * inspect): each is handled on its own, one that fails is reported and the
 * others still are, and the exit status says whether any failed.
 *
 * @module
 */
import { UsageError } from "./usage.ts";

/**
 * Runs `act` for each container named, in order. A failure prints
 * `gcr: <message>` and makes the status 1; a UsageError (the command line
 * itself is wrong) ends the command at once.
 */
export async function forEachContainer(
  refs: readonly string[],
  act: (ref: string) => void | Promise<void>,
): Promise<number> {
  let status = 0;
  for (const ref of refs) {
    try {
      await act(ref);
    } catch (error) {
      if (error instanceof UsageError || !(error instanceof Error)) throw error;
      console.error(`gcr: ${error.message}`);
      status = 1;
    }
  }
  return status;
}
