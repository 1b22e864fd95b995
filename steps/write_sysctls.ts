/**
 * config.json's sysctls, in the container's own namespaces, written
 * through its own /proc/sys.
 *
 * @module
 */
import { O, O_CLOEXEC } from "../ffi/constants.ts";
import { call, flags, num, type Step } from "./step.ts";

/**
 * Writes config.json's sysctls through the container's own /proc/sys, after
 * the pivot and before /proc/sys is made read-only. Only namespaced ones
 * are accepted (checked by the planner), so none of this reaches the host.
 */
export function writeSysctls(sysctl: readonly (readonly [string, string])[], firstFree: number): Step {
  return {
    name: "write-sysctls",
    why: "config.json's sysctls, in the container's own namespaces, through its /proc/sys",
    parent: [],
    child: sysctl.flatMap(([name, value]) => [
      call(
        "open",
        `/proc/sys/${name.replaceAll(".", "/")}`,
        flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["WRONLY", "CLOEXEC"]),
      ),
      call("write", num(firstFree, `${firstFree} /* ${name} */`), value, value.length),
      call("close", firstFree),
    ]),
  };
}
