import { AT_FDCWD, AT_RECURSIVE, LAYOUT, MOUNT_ATTR, MS } from "../ffi/constants.ts";
import type { ContainerPlan } from "./plan.ts";
import { call, flags, NULL, num, shown, type Step } from "./step.ts";

/**
 * `-v` volumes, bound into the new root before the pivot, while the host's
 * paths are still reachable. A read-only volume is made so with
 * mount_setattr(AT_RECURSIVE), which changes only the read-only flag, all
 * the way down (a remount would have to repeat the flags the kernel locked).
 * gcr resolved each container path inside the image and made the mount point
 * in the container's upper folder.
 */
export function bindVolumes(plan: ContainerPlan): Step {
  const attr = new Uint8Array(LAYOUT.mount_attr.size);
  const attrSet = flags(MOUNT_ATTR, "MOUNT_ATTR_", ["RDONLY"]);
  new DataView(attr.buffer).setBigUint64(LAYOUT.mount_attr.attr_set, BigInt(attrSet.value as number), true);
  return {
    name: "bind-volumes",
    why: "the -v host folders and files, bound into the new root (read-only when asked) before the host goes away",
    parent: [],
    child: plan.volumes.flatMap((volume) => {
      const target = `${plan.root}${volume.resolved}`;
      return [
        call("mount", volume.host, target, NULL, flags(MS, "MS_", ["BIND", "REC"]), NULL),
        ...(volume.readOnly
          ? [call(
            "mount_setattr",
            num(AT_FDCWD, "AT_FDCWD"),
            target,
            num(AT_RECURSIVE, "AT_RECURSIVE"),
            shown({ bytes: attr }, `{attr_set=${attrSet.show}}`),
            LAYOUT.mount_attr.size,
          )]
          : []),
      ];
    }),
  };
}
