import type { ContainerPlan } from "./plan.ts";
import { call, type Step } from "./step.ts";

/**
 * Overlay's mount options for a plan. `userxattr`: the mount is made in the
 * container's user namespace, where overlay may keep its whiteout and
 * opaque marks only in `user.overlay.*` xattrs (Linux 5.11+).
 */
export function overlayOptions(plan: ContainerPlan): string {
  return `lowerdir=${plan.rootfs},upperdir=${plan.overlay!.upper},workdir=${plan.overlay!.work},userxattr`;
}

/**
 * The container's root: an overlay whose read-only lower layer is the image
 * folder and whose upper layer is the container's own folder, so whatever
 * the container writes or deletes lands in `upper` and the image is never
 * changed. Mounted in the container's mount namespace only: when that
 * namespace goes, so does the mount, and nothing is left mounted on the host.
 * It is also the mount point pivot_root needs.
 */
export function mountOverlay(plan: ContainerPlan): Step {
  return {
    name: "mount-overlay",
    why: "a copy-on-write root: the image is the read-only lower layer, the container's writes go to its upper folder",
    parent: [],
    child: [call("mount", "overlay", plan.root, "overlay", 0, overlayOptions(plan))],
  };
}

/** Characters overlay's option parser would split a layer path at. */
export function overlayUnsafePath(path: string): boolean {
  return /[,:\\]/.test(path);
}

/** Said when the kernel refuses the overlay mount. */
export const OVERLAY_HINT =
  "the kernel refused an overlay mount in a user namespace (needs Linux 5.11+ and an upper folder on a filesystem " +
  "with user xattrs); --rootfs-copy runs on a copy of the image instead";
