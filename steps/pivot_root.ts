import { closeRoot, type RootFd } from "./in_root.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, type Step } from "./step.ts";

/**
 * Makes the rootfs the root of the mount namespace. pivot_root(".", ".")
 * stacks the old root on top of the new one at "/" (pivot_root(2), NOTES),
 * so no `.put_old` folder is needed and nothing is left in the rootfs. The
 * root's and /dev's descriptors go first: nothing of the old tree stays open.
 */
export function pivotRoot(plan: Pick<ContainerPlan, "root">, fd: RootFd): Step {
  return {
    name: "pivot-root",
    why: "the rootfs becomes /; unlike chroot, the old root can then be unmounted entirely",
    parent: [],
    child: [
      ...closeRoot(fd),
      call("chdir", plan.root),
      call("pivot_root", ".", "."),
    ],
  };
}
