/**
 * `gcr rm`: removes stopped containers (-f: kills running ones first), their
 * cgroups, network and folders.
 *
 * @module
 */
import { SIGNALS } from "../ffi/constants.ts";
import { findContainer, removeContainer } from "../state/containers.ts";
import { isRunning } from "../state/processes.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { forEachContainer } from "./each_container.ts";
import { signalContainer, waitStopped } from "../state/signals.ts";
import { releaseNetwork } from "../net/attach.ts";

/** `gcr rm [-f] <container>…`: removes stopped containers (-f: kills running ones first). */
export async function rmCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { force: "bool" }, { f: "force" }, "rm");
  if (rest.length === 0) throw new UsageError("gcr rm needs at least one container");
  const force = flags.has("force");
  return await forEachContainer(rest, async (ref) => {
    const found = findContainer(ref);
    if (found.record && isRunning(found.record)) {
      if (!force) {
        throw new Error(`container ${found.id} is running (gcr stop it, or gcr rm -f): not removed`);
      }
      signalContainer(found.record, SIGNALS.SIGKILL);
      if (!(await waitStopped(found, 10_000))) throw new Error(`container ${found.id} did not stop after SIGKILL`);
    }
    await releaseNetwork(found);
    await removeContainer(found);
    console.log(found.id);
  });
}
