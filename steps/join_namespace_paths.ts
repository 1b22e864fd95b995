/**
 * Namespaces config.json names by path (an engine's network namespace, a
 * pod's), joined rather than made.
 *
 * @module
 */
import { CLONE, O, O_CLOEXEC, SYS } from "../ffi/constants.ts";
import { call, flags, num, rawSyscall, type Step } from "./step.ts";

/** Joins namespaces given by path in config.json (e.g. a network namespace an engine made). */
export function joinNamespacePaths(
  paths: readonly { type: string; path: string; flag: number }[],
  first: number,
): Step {
  return {
    name: "join-namespace-paths",
    why: "namespaces config.json names by path are joined, not made; the user namespace first",
    parent: [],
    child: paths.flatMap(({ type, path, flag }) => [
      call("open", path, flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["RDONLY", "CLOEXEC"])),
      rawSyscall(
        "setns",
        SYS.setns,
        num(first, `${first} /* ${type} */`),
        num(flag, Object.entries(CLONE).find(([, v]) => v === flag)?.[0] ?? String(flag)),
      ),
      call("close", first),
    ]),
  };
}
