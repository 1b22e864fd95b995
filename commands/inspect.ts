/**
 * `gcr inspect`: containers' records as JSON, with their status as it is now.
 *
 * @module
 */

import { currentStatus } from "../state/processes.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { forEachContainer } from "./each_container.ts";
import { recorded } from "../state/containers.ts";

/** `gcr inspect <container>…`: the records as a JSON array, with the status as it is now. */
export async function inspectCommand(args: readonly string[]): Promise<number> {
  const { rest } = parseFlags(args, {}, {}, "inspect");
  if (rest.length === 0) throw new UsageError("gcr inspect needs at least one container");
  const out: unknown[] = [];
  const status = await forEachContainer(rest, (ref) => {
    const found = recorded(ref);
    const { exec, ...record } = found.record;
    out.push({
      ...record,
      status: currentStatus(found.record),
      ...(exec ? { process: { env: exec.env, workdir: exec.workdir, user: exec.user } } : {}),
      paths: { runtime: found.paths.run, data: found.paths.dir, log: found.paths.log },
    });
  });
  console.log(JSON.stringify(out, null, 2));
  return status;
}
