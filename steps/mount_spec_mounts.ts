/**
 * config.json's mounts, in its order: each resolved inside the root as the
 * child mounts it (steps/in_root.ts).
 *
 * @module
 */

import type { ChildCall } from "../ffi/chain.ts";
import {
  type BindAttributes,
  bindInRoot,
  changeMountInRoot,
  mkdirInRoot,
  mknodInRoot,
  mountInRoot,
  type Resolve,
  type RootFd,
  symlinkInRoot,
} from "./in_root.ts";
import { type Step } from "./step.ts";
import { S_IFREG } from "../ffi/constants.ts";

/**
 * One thing the child does to build config.json's mounts, in order. Paths
 * are the container's; each is resolved inside the root as the child acts
 * (steps/in_root.ts).
 */
export type MountAction =
  /** A folder under a file system mounted earlier in the same chain (which starts empty). */
  | { readonly op: "mkdir"; readonly path: string }
  /** An empty file to bind a file onto, under a file system mounted earlier. */
  | { readonly op: "touch"; readonly path: string }
  /** A fresh file system (tmpfs, proc, mqueue, …). */
  | {
    readonly op: "mount";
    readonly source: string;
    readonly target: string;
    readonly type: string;
    readonly flags: number;
    readonly data: string;
    readonly resolve: Resolve;
  }
  /** A bind of a host path, its attributes set before it is attached. */
  | {
    readonly op: "bind";
    readonly source: string;
    readonly target: string;
    readonly recursive: boolean;
    readonly attributes: BindAttributes;
  }
  /** A remount or propagation change of what is mounted at `target`. */
  | { readonly op: "change"; readonly target: string; readonly flags: number; readonly data: string }
  | { readonly op: "symlink"; readonly target: string; readonly path: string };

function actionCalls(action: MountAction, fd: RootFd): ChildCall[] {
  switch (action.op) {
    case "mkdir":
      return mkdirInRoot(fd, action.path, 0o755);
    case "touch":
      return mknodInRoot(fd, action.path, { value: S_IFREG | 0o644, show: "S_IFREG|0644" }, 0n);
    case "symlink":
      return symlinkInRoot(fd, action.target, action.path);
    case "mount":
      return mountInRoot(fd, action.target, {
        source: action.source,
        type: action.type,
        flags: action.flags,
        data: action.data === "" ? null : action.data,
      }, action.resolve);
    case "bind":
      return bindInRoot(fd, action.source, action.target, {
        recursive: action.recursive,
        attributes: action.attributes,
      });
    case "change":
      return changeMountInRoot(fd, action.target, action.flags, action.data === "" ? null : action.data);
  }
}

/** config.json's mounts, in their order, into the new root before the pivot (mount points made by gcr or here). */
export function mountSpecMounts(actions: readonly MountAction[], fd: RootFd): Step {
  return {
    name: "mount-spec-mounts",
    why: "config.json's mounts, in its order (later ones may sit on earlier ones), while host sources are reachable",
    parent: [],
    child: actions.flatMap((action) => actionCalls(action, fd)),
  };
}
