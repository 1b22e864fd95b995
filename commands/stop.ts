/**
 * `gcr stop`: SIGTERM to each container's first process, SIGKILL after the
 * grace period.
 *
 * @module
 */
import { SIGNALS } from "../ffi/constants.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { forEachContainer } from "./each_container.ts";
import { noteStopped, signalContainer, waitStopped } from "../state/signals.ts";
import { recorded } from "../state/containers.ts";

/** `gcr stop [-t SECONDS] <container>…`: SIGTERM, then SIGKILL after the grace period (10 s). */
export async function stopCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { time: "value" }, { t: "time" }, "stop");
  const time = flags.get("time") ?? "10";
  if (!/^\d+$/.test(time)) throw new UsageError(`gcr stop: -t takes whole seconds (got ${JSON.stringify(time)})`);
  if (rest.length === 0) throw new UsageError("gcr stop needs at least one container");
  return await forEachContainer(rest, async (ref) => {
    const found = recorded(ref);
    if (signalContainer(found.record, SIGNALS.SIGTERM) && !(await waitStopped(found, Number(time) * 1000))) {
      // pid 1 of a PID namespace ignores signals it has no handler for: only SIGKILL always ends it.
      signalContainer(found.record, SIGNALS.SIGKILL);
      if (!(await waitStopped(found, 10_000))) throw new Error(`container ${found.id} did not stop after SIGKILL`);
    }
    await waitStopped(found, 2000);
    noteStopped(found);
    console.log(ref);
  });
}
