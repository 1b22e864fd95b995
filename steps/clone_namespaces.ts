import { CLONE, ERRNO } from "../ffi/constants.ts";
import { readTextOr } from "../host/files.ts";
import type { ContainerPlan } from "./plan.ts";
import type { Step } from "./step.ts";

/**
 * Creates the container's first process in new namespaces with one clone(2).
 * USER comes with the others in the same call, so the kernel makes the user
 * namespace first and the rest are owned by it: that is what lets an
 * unprivileged caller have CAP_SYS_ADMIN over the new mount namespace.
 */
export function cloneNamespaces(plan: ContainerPlan): Step {
  // CGROUP comes later, in enter-cgroup, once the child is in its cgroup.
  const names: (keyof typeof CLONE)[] = ["NEWUSER", "NEWPID", "NEWNS", "NEWUTS", "NEWIPC"];
  if (plan.network !== "host") names.push("NEWNET");
  // -d: the child's parent is gcr's, gcr-monitor, which waits for it once this gcr has exited.
  if (plan.monitored) names.push("PARENT");
  return {
    name: "clone",
    why: "new user, PID, mount, UTS, IPC (and network) namespaces for the container's first process" +
      (plan.monitored ? ", as a child of gcr's parent, gcr-monitor, which waits for it after gcr has gone" : ""),
    parent: [{
      op: "clone",
      flags: names.reduce((sum, name) => sum | CLONE[name], 0),
      show: [...names.map((name) => `CLONE_${name}`), "SIGCHLD"].join("|"),
      nonDumpable: plan.ids.writer === "root",
      // Rootless, the child must stay dumpable until gcr has written its id
      // maps, and its own prctl would then make gcr non-dumpable too.
      sharesMemory: plan.ids.writer === "root",
    }],
    child: [],
  };
}

/** A sysctl's value, or "?" where this kernel has none. */
function sysctl(name: string): string {
  return readTextOr(`/proc/sys/${name.replaceAll(".", "/")}`, "?").trim();
}

/** Why clone may have failed, naming the sysctl that disables user namespaces. */
export function cloneFailureHint(errno: number): string | undefined {
  const { ENOSPC, EPERM, EACCES } = ERRNO;
  if (errno === ENOSPC) {
    return `user namespaces are disabled or used up: sysctl user.max_user_namespaces is ${
      sysctl("user.max_user_namespaces")
    }`;
  }
  if (errno === EPERM || errno === EACCES) {
    if (sysctl("kernel.unprivileged_userns_clone") === "0") {
      return "unprivileged user namespaces are disabled: sysctl kernel.unprivileged_userns_clone is 0";
    }
    if (sysctl("kernel.apparmor_restrict_unprivileged_userns") === "1") {
      return "AppArmor restricts unprivileged user namespaces: sysctl kernel.apparmor_restrict_unprivileged_userns is 1";
    }
    return "user namespaces are not permitted here (check sysctl user.max_user_namespaces and any seccomp or LSM policy)";
  }
  return undefined;
}
