import { PR_SET_DUMPABLE } from "../ffi/constants.ts";
import { call, num, type Step } from "./step.ts";

/**
 * Until it execs, the container's process is a clone of gcr's Deno: its
 * /proc/<pid>/exe is the host's deno binary, and its memory is gcr's. A
 * non-dumpable process's exe, mem, fd/ and the like open only to holders of
 * CAP_SYS_PTRACE over the host's user namespace, so nothing in a container
 * can reach them (CVE-2019-5736). Most children are born so (the clone op's
 * `nonDumpable`); this step is for the one gcr must first write id maps
 * into as an ordinary user, which the kernel allows only while the process
 * is dumpable: right after map-ids, while it is still alone in its new PID
 * namespace. The exec of gcr-exec makes it dumpable again, with an exe that
 * is only a sealed memfd.
 */
export function nonDumpable(): Step {
  return {
    name: "non-dumpable",
    why: "once its id maps are written, no one of the container's uid may open this clone of gcr's Deno in /proc",
    parent: [],
    child: [call("prctl", num(PR_SET_DUMPABLE, "PR_SET_DUMPABLE"), 0, 0, 0, 0)],
  };
}
