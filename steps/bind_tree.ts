import type { ChildCall } from "../ffi/chain.ts";
import { AT_FDCWD, AT_RECURSIVE, LAYOUT, MOUNT_ATTR, MS } from "../ffi/constants.ts";
import { call, flags, NULL, num, shown } from "./step.ts";

/**
 * The calls that bind `source` onto `target` with everything mounted below
 * it, then set `attributes` (read-only, nosuid, …) on every mount of that
 * tree with mount_setattr(AT_RECURSIVE). A read-only remount would change
 * only the top mount, and would have to repeat the flags the kernel locked.
 */
export function bindTree(
  source: string,
  target: string,
  attributes: readonly (keyof typeof MOUNT_ATTR)[] = [],
): ChildCall[] {
  const bind = call("mount", source, target, NULL, flags(MS, "MS_", ["BIND", "REC"]), NULL);
  if (attributes.length === 0) return [bind];
  const attr = new Uint8Array(LAYOUT.mount_attr.size);
  const attrSet = flags(MOUNT_ATTR, "MOUNT_ATTR_", attributes);
  new DataView(attr.buffer).setBigUint64(LAYOUT.mount_attr.attr_set, BigInt(attrSet.value as number), true);
  return [
    bind,
    call(
      "mount_setattr",
      num(AT_FDCWD, "AT_FDCWD"),
      target,
      num(AT_RECURSIVE, "AT_RECURSIVE"),
      shown({ bytes: attr }, `{attr_set=${attrSet.show}}`),
      LAYOUT.mount_attr.size,
    ),
  ];
}
