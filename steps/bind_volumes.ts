import { MOUNT_ATTR } from "../ffi/constants.ts";
import { bindInRoot, type RootFd } from "./in_root.ts";
import type { ContainerPlan } from "./plan.ts";
import type { Step } from "./step.ts";

/**
 * `-v` volumes, bound into the new root before the pivot, while the host's
 * paths are still reachable. A read-only volume is read-only on every mount
 * of its tree (mount_setattr with AT_RECURSIVE, which changes only that
 * flag: a remount would have to repeat the flags the kernel locked) before
 * the tree is attached, so it is never writable in the container. gcr
 * resolved each container path inside the image and made the mount point in
 * the container's upper folder; the child resolves it again, inside the
 * root, as it mounts.
 */
export function bindVolumes(plan: Pick<ContainerPlan, "volumes">, fd: RootFd): Step {
  return {
    name: "bind-volumes",
    why: "the -v host folders and files, bound into the new root (read-only when asked) before the host goes away",
    parent: [],
    child: plan.volumes.flatMap((volume) =>
      bindInRoot(fd, volume.host, volume.resolved, {
        recursive: true,
        ...(volume.readOnly ? { attributes: { set: MOUNT_ATTR.RDONLY } } : {}),
      })
    ),
  };
}
