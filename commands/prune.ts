/**
 * `gcr prune`: removes every stopped container.
 *
 * @module
 */

import { listContainers, removeContainer } from "../state/containers.ts";
import { isRunning } from "../state/processes.ts";
import { releaseNetwork } from "../net/attach.ts";

/** `gcr prune`: removes every stopped container and prints its id. */
export async function pruneCommand(args: readonly string[]): Promise<number> {
  if (args.length) throw new Error(`gcr prune takes no arguments (got ${args.join(" ")})`);
  for (const found of listContainers()) {
    if (found.record && isRunning(found.record)) continue;
    // A folder without a readable record is left by a reboot or by a gcr
    // killed while it was being made: no container runs from it.
    await releaseNetwork(found);
    await removeContainer(found);
    console.log(found.id);
  }
  return 0;
}
