/**
 * config.json's resource limits (setrlimit), which the command inherits.
 *
 * @module
 */
import { LAYOUT } from "../ffi/constants.ts";
import { call, num, shown, type Step } from "./step.ts";

/** setrlimit for each of config.json's rlimits (raising a hard limit needs CAP_SYS_RESOURCE on the host). */
export function setRlimits(rlimits: readonly { type: string; resource: number; soft: bigint; hard: bigint }[]): Step {
  const { rlimit } = LAYOUT;
  return {
    name: "set-rlimits",
    why: "config.json's resource limits, inherited by the command across exec",
    parent: [],
    child: rlimits.map(({ type, resource, soft, hard }) => {
      const bytes = new Uint8Array(rlimit.size);
      const view = new DataView(bytes.buffer);
      view.setBigUint64(rlimit.rlim_cur, soft, true);
      view.setBigUint64(rlimit.rlim_max, hard, true);
      return call("setrlimit", num(resource, type), shown({ bytes }, `{${soft}, ${hard}}`));
    }),
  };
}
