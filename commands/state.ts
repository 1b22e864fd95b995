/**
 * `gcr state`: the runtime spec's state of a container, as JSON.
 *
 * @module
 */

import { currentStatus } from "../state/processes.ts";
import { parseFlags } from "./flags.ts";
import { ociContainer, oneId } from "./oci_container.ts";
import { OCI_VERSION } from "../output/version.ts";

/** `gcr state ID`: the runtime-spec state as JSON. */
export function stateCommand(args: readonly string[]): number {
  const { rest } = parseFlags(args, {}, {}, "state");
  const found = ociContainer(oneId(rest, "state"));
  const status = currentStatus(found.record);
  const alive = status !== "stopped";
  console.log(JSON.stringify(
    {
      ociVersion: OCI_VERSION,
      id: found.id,
      status,
      pid: alive ? found.record.initPid ?? 0 : 0,
      bundle: found.record.bundle ?? "",
      rootfs: found.record.rootfs,
      created: found.record.created,
      owner: "",
      annotations: found.record.annotations ?? {},
    },
    null,
    2,
  ));
  return 0;
}
