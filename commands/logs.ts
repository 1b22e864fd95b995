/**
 * `gcr logs`: what a detached container wrote; -f follows it until it stops.
 *
 * @module
 */

import { currentStatus } from "../state/processes.ts";
import { readRecord } from "../state/records.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { recorded } from "../state/containers.ts";
import { sleep } from "../host/time.ts";

/** `gcr logs [-f] <container>`: what a detached container wrote; -f follows until it stops. */
export async function logsCommand(args: readonly string[]): Promise<number> {
  const { flags, rest } = parseFlags(args, { follow: "bool" }, { f: "follow" }, "logs");
  if (rest.length !== 1) throw new UsageError("gcr logs takes one container");
  const found = recorded(rest[0]!);
  if (!found.record.detached) {
    throw new Error(`container ${found.id} was not started with -d: its output went to the terminal of gcr run`);
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(found.paths.log, { read: true });
  } catch (error) {
    throw new Error(`cannot read the log of ${found.id}: ${(error as Error).message}`);
  }
  const follow = flags.has("follow");
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = file.readSync(buffer);
      if (n !== null && n > 0) {
        await Deno.stdout.write(buffer.subarray(0, n));
        continue;
      }
      if (!follow) return 0;
      const record = readRecord(found.paths);
      // One more read after it stopped: what it wrote last is not lost.
      if (!record || currentStatus(record) === "stopped") {
        for (let m = file.readSync(buffer); m; m = file.readSync(buffer)) {
          await Deno.stdout.write(buffer.subarray(0, m));
        }
        return 0;
      }
      await sleep(100);
    }
  } finally {
    file.close();
  }
}
