/**
 * --no-pivot: the root moved over / and chroot'ed into, for a root on a
 * file system where pivot_root fails.
 *
 * @module
 */
import { MS } from "../ffi/constants.ts";
import { closeRoot, type RootFd } from "./in_root.ts";
import { call, flags, NULL, type Step } from "./step.ts";

/** --no-pivot: move the root onto / and chroot into it (for a root on ramfs, where pivot_root fails). */
export function moveRoot(root: string, fd: RootFd): Step {
  return {
    name: "move-root",
    why: "--no-pivot: the root is moved over / and chroot'ed into; the host's root stays below it",
    parent: [],
    child: [
      ...closeRoot(fd),
      call("chdir", root),
      call("mount", root, "/", NULL, flags(MS, "MS_", ["MOVE"]), NULL),
      call("chroot", "."),
      call("chdir", "/"),
    ],
  };
}
