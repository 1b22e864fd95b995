import { CLONE, SYS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { flags, rawSyscall, type Step } from "./step.ts";

/**
 * Moves the container's first process into its cgroup while it waits at its
 * gate, so the command runs limited from its first instruction; then gives
 * it a cgroup namespace. That namespace is made here rather than at clone:
 * a cgroup namespace is rooted at the cgroup its creator is in, so made
 * after the move the container sees its own cgroup as `/`.
 */
export function enterCgroup(plan: Pick<ContainerPlan, "cgroup">, unshareCgroup = true): Step {
  return {
    name: "enter-cgroup",
    why: "limits apply before the command runs, and the container sees its own cgroup as /",
    parent: plan.cgroup ? [{ op: "join-cgroup", setup: plan.cgroup.setup, procs: plan.cgroup.procs }] : [],
    // raw: the unshare wrapper is fine, but this keeps every namespace call visibly a syscall
    child: unshareCgroup ? [rawSyscall("unshare", SYS.unshare, flags(CLONE, "CLONE_", ["NEWCGROUP"]))] : [],
  };
}
