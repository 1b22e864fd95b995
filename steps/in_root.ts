/**
 * Everything the child does to a path inside the container's root before
 * the pivot goes through a descriptor, never through a path string.
 *
 * Before the pivot, "/" is still the host's. A mount target written as a
 * path, `<root>/proc`, is resolved by the kernel at the moment of the mount:
 * a symlink the image has there (`/proc -> /etc`, `/dev -> ../../..`), or
 * one swapped in by a process that shares a volume with the container
 * between gcr's check and the mount (CVE-2021-30465), sends it anywhere on
 * the host. So each target is opened first with openat2(RESOLVE_IN_ROOT),
 * which resolves symlinks and ".." as if the root were "/" and refuses magic
 * links, and the operation names the descriptor: a mount onto
 * /proc/self/fd/N lands on exactly what was opened; mkdirat, mknodat and
 * symlinkat work in an opened folder. Binds are made as detached trees
 * (open_tree), given their attributes while no one can see them, and moved
 * onto the opened target in one call, so a read-only volume is never
 * writable in between.
 *
 * Once the container's /dev is mounted, gcr opens it too (open-dev): it is
 * a fresh tmpfs of gcr's own that nothing else can reach, so a single name
 * in it (`null`, `pts`, `console`) is safe to name relative to that
 * descriptor, or through /proc/self/fd/<dev>/<name> for mount(2), without
 * an openat2 each. A mount of a name gcr made is always preceded by the
 * mknodat or mkdirat that made it (which refuses an existing symlink).
 *
 * The descriptors are the lowest free ones, known in advance (the chain
 * cannot pass a return value on): the root's, opened once after it is
 * mounted (open-root), /dev's right after it (open-dev), then `at` for a
 * target and `tree` for a detached tree, each closed right after its use.
 *
 * @module
 */
import type { ChildCall } from "../ffi/chain.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_RECURSIVE,
  AT_SYMLINK_NOFOLLOW,
  FS_LAYOUT,
  LAYOUT,
  MOUNT_ATTR,
  MOUNT_ATTR__ATIME,
  MOVE_MOUNT_F_EMPTY_PATH,
  MOVE_MOUNT_T_EMPTY_PATH,
  MS,
  O,
  O_CLOEXEC,
  OPEN_TREE_CLONE,
  RESOLVE,
  SYS,
} from "../ffi/constants.ts";
import { call, flags, NULL, num, rawSyscall, type Shown, shown, type Step } from "./step.ts";

/** Where the root's descriptor is (the lowest one free after close-fds and the chain's own), and /dev's once open. */
export interface RootFd {
  readonly root: number;
  readonly dev?: number;
}

/** How a target may be reached: symlinks resolved inside the root, or none at all (proc and sysfs, as runc). */
export type Resolve = "in-root" | "no-symlinks";

/** The target's descriptor, and the detached tree's: the lowest free ones. */
const at = (fd: RootFd) => (fd.dev ?? fd.root) + 1;
const tree = (fd: RootFd) => at(fd) + 1;

/** The name of `path` in gcr's own /dev, where that is open and `path` is one name directly in it. */
function inDev(fd: RootFd, path: string): string | undefined {
  const parts = relative(path).split("/");
  return fd.dev !== undefined && parts.length === 2 && parts[0] === "dev" ? parts[1] : undefined;
}

/** `/proc/self/fd/<dev>/<name>`: the name in the /dev gcr opened, as a path mount(2) accepts. */
function devPath(fd: RootFd, name: string): Shown {
  return shown({ string: `/proc/self/fd/${fd.dev}/${name}` }, `"/proc/self/fd/${fd.dev}/${name}" /* /dev/${name} */`);
}

const devFd = (fd: RootFd) => num(fd.dev!, `${fd.dev} /* /dev */`);

/** Opens the root folder once it is mounted; every in-root call starts from this descriptor. */
export function openRoot(root: string, fd: RootFd): Step {
  return {
    name: "open-root",
    why: "every later mount target is opened from here, inside the root, so no symlink can lead it onto the host",
    parent: [],
    child: [
      yields(call("open", root, flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["PATH", "DIRECTORY", "CLOEXEC"])), fd.root),
    ],
  };
}

/**
 * Opens the container's /dev (a tmpfs gcr or config.json just mounted) as
 * descriptor root + 1, kept until the pivot: names in it are made and
 * mounted on relative to it. Returns the descriptors from then on.
 */
export function openDev(fd: RootFd): { step: Step; fd: RootFd } {
  const dev = fd.root + 1;
  return {
    step: {
      name: "open-dev",
      why: "the new /dev, opened once: its device nodes, links and mounts are made relative to it",
      parent: [],
      child: [openInRoot(fd, "/dev", "no-symlinks")],
    },
    fd: { root: fd.root, dev },
  };
}

/** The root's and /dev's descriptors closed, before the pivot: nothing of the tree gcr assembled stays open. */
export function closeRoot(fd: RootFd): ChildCall[] {
  return [
    call("close", num(fd.root, `${fd.root} /* root */`)),
    ...(fd.dev !== undefined ? [call("close", devFd(fd))] : []),
  ];
}

/** `/proc` → `proc`: openat2 takes paths relative to the root's descriptor. */
function relative(path: string): string {
  const parts = path.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) throw new Error(`container path ${JSON.stringify(path)} must not contain ".."`);
  return parts.join("/") || ".";
}

/** openat2(root, path, {O_PATH|O_CLOEXEC, RESOLVE_IN_ROOT|…}): the target, as descriptor `at`. */
export function openInRoot(fd: RootFd, path: string, resolve: Resolve = "in-root"): ChildCall {
  const { open_how } = FS_LAYOUT;
  const how = new Uint8Array(open_how.size);
  const view = new DataView(how.buffer);
  const resolveFlags = RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS | (resolve === "no-symlinks" ? RESOLVE.NO_SYMLINKS : 0);
  view.setBigUint64(open_how.flags, BigInt(O.PATH | O_CLOEXEC), true);
  view.setBigUint64(open_how.resolve, BigInt(resolveFlags), true);
  const names = ["IN_ROOT", "NO_MAGICLINKS", ...(resolve === "no-symlinks" ? ["NO_SYMLINKS"] : [])];
  return yields(
    rawSyscall(
      "openat2",
      SYS.openat2,
      num(fd.root, `${fd.root} /* root */`),
      relative(path),
      shown({ bytes: how }, `{O_PATH|O_CLOEXEC, ${names.map((name) => `RESOLVE_${name}`).join("|")}}`),
      open_how.size,
    ),
    at(fd),
  );
}

/** A call shown with the descriptor it is known to return (the lowest free one). */
function yields(made: ChildCall, fd: number): ChildCall {
  return { ...made, show: `${made.show} → ${fd}` };
}

/** The target's descriptor as a path mount(2) accepts: the magic link to exactly what was opened. */
function procFd(fd: number, path: string) {
  return shown({ string: `/proc/self/fd/${fd}` }, `"/proc/self/fd/${fd}" /* ${path} */`);
}

/** A fresh file system (proc, tmpfs, devpts, sysfs, …) mounted on `path` in the root. */
export function mountInRoot(
  fd: RootFd,
  path: string,
  mount: { readonly source: string; readonly type: string; readonly flags: number; readonly data: string | null },
  resolve: Resolve = "in-root",
): ChildCall[] {
  const name = inDev(fd, path);
  const mounting = (target: Shown) =>
    call("mount", mount.source, target, mount.type, num(mount.flags, showMountFlags(mount.flags)), mount.data ?? NULL);
  if (name !== undefined) return [mounting(devPath(fd, name))];
  return [openInRoot(fd, path, resolve), mounting(procFd(at(fd), path)), call("close", at(fd))];
}

/**
 * A mount(2) on what is mounted at `path` now (a remount, a propagation
 * change): opened again, since a descriptor opened before a mount names
 * what lies under it.
 */
export function changeMountInRoot(fd: RootFd, path: string, mountFlags: number, data: string | null): ChildCall[] {
  return [
    openInRoot(fd, path),
    call("mount", NULL, procFd(at(fd), path), NULL, num(mountFlags, showMountFlags(mountFlags)), data ?? NULL),
    call("close", at(fd)),
  ];
}

/** What a bind's mounts get: per-mount attributes set or cleared, and a propagation type. */
export interface BindAttributes {
  readonly set?: number;
  readonly clear?: number;
  /** MS_PRIVATE, MS_SLAVE, MS_SHARED or MS_UNBINDABLE. */
  readonly propagation?: number;
}

/**
 * Binds `source` (a host path) onto `path` in the root. With attributes,
 * the bind is made as a detached tree, the attributes are set on every
 * mount of it (AT_RECURSIVE with `recursive`), and it is moved onto the
 * opened target: it is never visible without them. Without, one mount(2)
 * onto the opened target does.
 */
export function bindInRoot(
  fd: RootFd,
  source: string,
  path: string,
  options: { readonly recursive: boolean; readonly attributes?: BindAttributes; readonly resolve?: Resolve },
): ChildCall[] {
  const { recursive, attributes = {} } = options;
  const setattr = attributes.set || attributes.clear || attributes.propagation;
  const recursiveFlag = recursive ? AT_RECURSIVE : 0;
  const name = inDev(fd, path);
  if (!setattr) {
    const bind = (target: Shown) =>
      call("mount", source, target, NULL, flags(MS, "MS_", recursive ? ["BIND", "REC"] : ["BIND"]), NULL);
    if (name !== undefined) return [bind(devPath(fd, name))];
    return [openInRoot(fd, path, options.resolve), bind(procFd(at(fd), path)), call("close", at(fd))];
  }
  return [
    ...(name !== undefined ? [] : [openInRoot(fd, path, options.resolve)]),
    yields(
      call(
        "open_tree",
        num(AT_FDCWD, "AT_FDCWD"),
        source,
        num(
          OPEN_TREE_CLONE | O_CLOEXEC | recursiveFlag,
          `OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC${recursive ? "|AT_RECURSIVE" : ""}`,
        ),
      ),
      tree(fd),
    ),
    ...(setattr
      ? [call(
        "mount_setattr",
        num(tree(fd), `${tree(fd)} /* detached */`),
        "",
        num(AT_EMPTY_PATH | recursiveFlag, `AT_EMPTY_PATH${recursive ? "|AT_RECURSIVE" : ""}`),
        shown({ bytes: mountAttr(attributes) }, showMountAttr(attributes)),
        LAYOUT.mount_attr.size,
      )]
      : []),
    name !== undefined
      ? call(
        "move_mount",
        num(tree(fd), `${tree(fd)} /* detached */`),
        "",
        devFd(fd),
        name,
        num(MOVE_MOUNT_F_EMPTY_PATH, "MOVE_MOUNT_F_EMPTY_PATH"),
      )
      : call(
        "move_mount",
        num(tree(fd), `${tree(fd)} /* detached */`),
        "",
        num(at(fd), `${at(fd)} /* ${path} */`),
        "",
        num(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH, "MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH"),
      ),
    call("close", tree(fd)),
    ...(name !== undefined ? [] : [call("close", at(fd))]),
  ];
}

/** mkdir of `path` (its last component) in the folder that holds it, opened in the root. */
export function mkdirInRoot(fd: RootFd, path: string, mode: number): ChildCall[] {
  const own = inDev(fd, path);
  if (own !== undefined) return [call("mkdirat", devFd(fd), own, num(mode, `0${mode.toString(8)}`))];
  const { folder, name } = split(path);
  return [
    openInRoot(fd, folder),
    call("mkdirat", num(at(fd), `${at(fd)} /* ${folder} */`), name, num(mode, `0${mode.toString(8)}`)),
    call("close", at(fd)),
  ];
}

/**
 * mknod of `path` in the folder that holds it, opened in the root; with
 * `owner`, chowned there too (the node was just made by this process, so
 * the name cannot be a symlink yet; AT_SYMLINK_NOFOLLOW all the same).
 */
export function mknodInRoot(
  fd: RootFd,
  path: string,
  mode: { value: number; show: string },
  dev: bigint,
  owner?: { uid: number; gid: number },
): ChildCall[] {
  const own = inDev(fd, path);
  const { folder, name } = own !== undefined ? { folder: "/dev", name: own } : split(path);
  const dir = own !== undefined ? devFd(fd) : num(at(fd), `${at(fd)} /* ${folder} */`);
  const chown = owner
    ? [call("fchownat", dir, name, owner.uid, owner.gid, num(AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"))]
    : [];
  if (own !== undefined) return [call("mknodat", dir, name, num(mode.value, mode.show), num(dev)), ...chown];
  return [
    openInRoot(fd, folder),
    call("mknodat", dir, name, num(mode.value, mode.show), num(dev)),
    ...chown,
    call("close", at(fd)),
  ];
}

/** A symlink at `path` (in the folder that holds it, opened in the root) pointing at `target`. */
export function symlinkInRoot(fd: RootFd, target: string, path: string): ChildCall[] {
  const own = inDev(fd, path);
  if (own !== undefined) return [call("symlinkat", target, devFd(fd), own)];
  const { folder, name } = split(path);
  return [
    openInRoot(fd, folder),
    call("symlinkat", target, num(at(fd), `${at(fd)} /* ${folder} */`), name),
    call("close", at(fd)),
  ];
}

function split(path: string): { folder: string; name: string } {
  const parts = relative(path).split("/");
  const name = parts.pop()!;
  if (name === "." || name === "") throw new Error(`container path ${JSON.stringify(path)} names no file`);
  return { folder: "/" + parts.join("/"), name };
}

/** struct mount_attr for mount_setattr. */
function mountAttr(attributes: BindAttributes): Uint8Array {
  const bytes = new Uint8Array(LAYOUT.mount_attr.size);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(LAYOUT.mount_attr.attr_set, BigInt(attributes.set ?? 0), true);
  view.setBigUint64(LAYOUT.mount_attr.attr_clr, BigInt(attributes.clear ?? 0), true);
  view.setBigUint64(LAYOUT.mount_attr.propagation, BigInt(attributes.propagation ?? 0), true);
  return bytes;
}

function showAttributeBits(value: number): string {
  if (value === MOUNT_ATTR__ATIME) return "MOUNT_ATTR__ATIME";
  const names = Object.entries(MOUNT_ATTR).filter(([, bit]) => (value & bit) === bit).map(([n]) => `MOUNT_ATTR_${n}`);
  return names.join("|") || "0";
}

function showMountAttr(attributes: BindAttributes): string {
  const parts = [
    ...(attributes.set ? [`attr_set=${showAttributeBits(attributes.set)}`] : []),
    ...(attributes.clear ? [`attr_clr=${showAttributeBits(attributes.clear)}`] : []),
    ...(attributes.propagation ? [`propagation=${showMountFlags(attributes.propagation)}`] : []),
  ];
  return `{${parts.join(", ")}}`;
}

/** `MS_BIND|MS_REC`: flags shown by name where MS has them. */
export function showMountFlags(value: number): string {
  const names = Object.entries(MS).filter(([, bit]) => (value & bit) === bit).map(([name]) => name);
  const known = names.reduce((sum, name) => sum | MS[name as keyof typeof MS], 0);
  const rest = value & ~known;
  const parts = names.map((name) => `MS_${name}`);
  if (rest) parts.push(`0x${rest.toString(16)}`);
  return parts.length ? parts.join("|") : "0";
}
