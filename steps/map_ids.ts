import type { ContainerPlan } from "./plan.ts";
import { SYS } from "../ffi/constants.ts";
import { type IdMapping, NULL, type ParentOp, rawSyscall, type Step } from "./step.ts";

const lines = (map: readonly IdMapping[]) => map.map((m) => `${m.inside} ${m.outside} ${m.count}`).join("\n") + "\n";
const helperArgs = (map: readonly IdMapping[]) => map.flatMap((m) => [m.inside, m.outside, m.count].map(String));

/**
 * Writes the user and group id maps while the child waits at its gate: a
 * process that execs while its ids are unmapped loses its capabilities, and
 * an unprivileged writer must deny setgroups before it may write gid_map.
 */
export function mapIds(plan: Pick<ContainerPlan, "ids">): Step {
  const { ids } = plan;
  const parent: ParentOp[] = ids.via === "helper"
    ? [
      { op: "run-helper", argv: ["newuidmap", "{pid}", ...helperArgs(ids.uid)] },
      { op: "run-helper", argv: ["newgidmap", "{pid}", ...helperArgs(ids.gid)] },
    ]
    : [
      ...(ids.setgroups === "deny" ? [{ op: "write-proc-file", file: "setgroups", content: "deny" } as const] : []),
      { op: "write-proc-file", file: "uid_map", content: lines(ids.uid) },
      { op: "write-proc-file", file: "gid_map", content: lines(ids.gid) },
    ];
  parent.push({ op: "log-identity", uidMap: ids.uid, gidMap: ids.gid });
  return {
    name: "map-ids",
    why:
      "container root is the caller (or root) on the host; ids must be mapped before the child does anything as root",
    parent,
    // Drop the supplementary groups inherited from gcr where the kernel lets
    // us; raw, because glibc's wrapper can hang in the cloned child (SYS).
    child: ids.setgroups === "allow" ? [rawSyscall("setgroups", SYS.setgroups, 0, NULL)] : [],
  };
}
