import { bindTree } from "./bind_tree.ts";
import type { ContainerPlan } from "./plan.ts";
import type { Step } from "./step.ts";

/**
 * `-v` volumes, bound into the new root before the pivot, while the host's
 * paths are still reachable. A read-only volume is made so with
 * mount_setattr(AT_RECURSIVE), which changes only the read-only flag, all
 * the way down (a remount would have to repeat the flags the kernel locked).
 * gcr resolved each container path inside the image and made the mount point
 * in the container's upper folder.
 */
export function bindVolumes(plan: ContainerPlan): Step {
  return {
    name: "bind-volumes",
    why: "the -v host folders and files, bound into the new root (read-only when asked) before the host goes away",
    parent: [],
    child: plan.volumes.flatMap((volume) =>
      bindTree(volume.host, `${plan.root}${volume.resolved}`, volume.readOnly ? ["RDONLY"] : [])
    ),
  };
}
