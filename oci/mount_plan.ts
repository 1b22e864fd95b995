/**
 * config.json's mounts as what the child does (steps/mount_spec_mounts.ts):
 * mount points made inside the root, what may not go over or into /proc,
 * binds with their attributes, cgroup mounts on v1, and the folders device
 * nodes go in.
 *
 * @module
 */

import { ERRNO, MOUNT_ATTR, MS, O } from "../ffi/constants.ts";
import { openFd } from "../ffi/fds.ts";
import { closeFd, ensureDirInRoot, openInRoot } from "../ffi/safe_fs.ts";
import { type MountAction } from "../steps/mount_spec_mounts.ts";
import { hostPathKind, type PathKind } from "../steps/mask_paths.ts";
import type { OciMount } from "./spec/mounts.ts";
import type { OciSpec } from "./spec/spec.ts";
import { type OciRunOptions } from "./plan.ts";
import { fail } from "./spec/fields.ts";
import { atInRoot } from "../ffi/safe_fs.ts";

/** Path components of an absolute container path, refusing `..`. */
function components(path: string, field: string): string[] {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) fail(field, `must not contain ".." (${JSON.stringify(path)})`);
  return parts;
}

/**
 * config.json's mounts as child actions. A mount point in the bundle's root
 * is made by gcr now, resolved inside the root (openat2 RESOLVE_IN_ROOT: a
 * symlink in the image cannot send it elsewhere on the host); the child
 * resolves it again, inside the root, as it mounts (steps/in_root.ts). A
 * mount point under an earlier non-bind mount (a /dev/pts in /dev's tmpfs)
 * is made by the child, on the fresh file system where it cannot exist yet.
 */
export function mountActions(spec: OciSpec, options: OciRunOptions): MountAction[] {
  const root = spec.root.path;
  const rootFd = openFd(root, O.PATH | O.DIRECTORY, 0, "root.path must be a folder");
  const actions: MountAction[] = [];
  const fresh = new Map<string, string>(); // destinations of earlier non-bind mounts, with their type
  const made = new Set<string>();
  try {
    spec.mounts.forEach((mount: OciMount, index) => {
      const field = `mounts[${index}]`;
      const parts = components(mount.destination, `${field}.destination`);
      if (parts.length === 0) fail(`${field}.destination`, "cannot be / (that is root.path)");
      let isFile = false;
      if (mount.bind) {
        try {
          isFile = !Deno.statSync(mount.source).isDirectory;
        } catch (error) {
          fail(`${field}.source`, `${JSON.stringify(mount.source)} cannot be bound: ${(error as Error).message}`);
        }
      }
      const destination = "/" + parts.join("/");
      const kernelFs = mount.type === "proc" || mount.type === "sysfs";
      const under = [...fresh.keys()].filter((d) =>
        destination.startsWith(d + "/")
      ).sort((a, b) => b.length - a.length)[0];
      // Where the mount lands, as a container path, for the checks below.
      let lands = destination;
      let landsOnHost: string | undefined;
      if (under !== undefined) {
        // On a file system this chain mounted: every level below it is new.
        const rest = parts.slice(components(under, field).length);
        let path = under;
        const empty = fresh.get(under) === "tmpfs" || fresh.get(under) === "ramfs";
        rest.forEach((part, i) => {
          path += `/${part}`;
          // A tmpfs starts empty: every level is made. proc, sysfs and the
          // like come with their folders (/sys/fs/cgroup): nothing to make.
          if (made.has(path) || !empty) return;
          made.add(path);
          actions.push(i === rest.length - 1 && isFile ? { op: "touch", path } : { op: "mkdir", path });
        });
      } else {
        if (kernelFs) refuseSymlinks(root, parts, mount.type, `${field}.destination`);
        const relative = parts.join("/");
        const parent = parts.slice(0, -1).join("/");
        const dirFd = ensureDirInRoot(rootFd, parent);
        try {
          if (isFile) {
            const fd = openInRoot(rootFd, relative, O.WRONLY | O.CREAT, [ERRNO.EISDIR]);
            if (fd >= 0) closeFd(fd);
          } else {
            closeFd(ensureDirInRoot(rootFd, relative));
          }
          const resolved = openInRoot(rootFd, relative, O.PATH);
          try {
            landsOnHost = Deno.readLinkSync(`/proc/self/fd/${resolved}`);
          } finally {
            closeFd(resolved);
          }
        } finally {
          closeFd(dirFd);
        }
        lands = landsOnHost === root ? "/" : landsOnHost.slice(root.length);
      }
      refuseOverProc(mount, lands, `${field}.destination`);
      if (mount.copyUp) refuseCopyUp(mount, landsOnHost, `${field}.options`);
      if (!mount.bind) fresh.set(destination, mount.type);
      actions.push(...mountCalls(mount, destination, options, field));
    });
  } finally {
    closeFd(rootFd);
  }
  return actions;
}

/**
 * proc and sysfs go only onto an ordinary folder, as runc requires: through
 * a symlink the container's /proc would be whatever the image put at the
 * real path, with gcr's masks landing elsewhere (CVE-2019-16884).
 */
function refuseSymlinks(root: string, parts: readonly string[], type: string, field: string): void {
  let path = root;
  for (const part of parts) {
    path += `/${part}`;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch {
      return; // missing from here on: gcr makes ordinary folders
    }
    if (!info.isDirectory) {
      fail(field, `must be an ordinary folder for a ${type} mount (${path.slice(root.length)} is not)`);
    }
  }
}

/** What may be mounted under /proc: files lxcfs emulates (runc's list); anything else would hide the kernel's. */
const PROC_FILES_LXCFS_EMULATES = new Set([
  "/proc/cpuinfo",
  "/proc/diskstats",
  "/proc/meminfo",
  "/proc/stat",
  "/proc/swaps",
  "/proc/uptime",
  "/proc/loadavg",
  "/proc/slabinfo",
  "/proc/sys/kernel/ns_last_pid",
  "/proc/sys/crypto/fips_enabled",
]);

/**
 * Nothing but a proc file system goes over /proc, and under it only what
 * lxcfs emulates (CVE-2019-19921: a volume over /proc let a container
 * replace the files the runtime writes its labels and masks through).
 * `lands`: where the mount resolved to, inside the root.
 */
function refuseOverProc(mount: OciMount, lands: string, field: string): void {
  if (lands === "/proc") {
    if (mount.type === "proc" || (mount.bind && isProcRoot(mount.source))) return;
    fail(field, `${JSON.stringify(mount.destination)} cannot be mounted over /proc: it is not of type proc`);
  }
  if (lands.startsWith("/proc/") && !PROC_FILES_LXCFS_EMULATES.has(lands)) {
    fail(field, `${JSON.stringify(mount.destination)} cannot be mounted inside /proc`);
  }
}

/** Whether `path` is where a proc file system is mounted on the host. */
function isProcRoot(path: string): boolean {
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch {
    return false;
  }
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n").some((line) => {
    const [left = "", right = ""] = line.split(" - ");
    return left.split(" ")[4] === real && right.split(" ")[0] === "proc";
  });
}

/**
 * `tmpcopyup` (podman --read-only puts it on /tmp, /var/tmp, /run): the tmpfs
 * should start with what the image has there. Over an empty folder that is
 * an empty tmpfs, which gcr makes; copying files gcr does not do (the child
 * runs only libc calls), so a folder with content is refused, by field.
 */
function refuseCopyUp(mount: OciMount, target: string | undefined, field: string): void {
  if (mount.type !== "tmpfs") fail(field, `(tmpcopyup) is for tmpfs mounts, not ${mount.type}`);
  let entries: Deno.DirEntry[] = [];
  try {
    if (target !== undefined) entries = [...Deno.readDirSync(target)];
  } catch { /* not there: empty */ }
  if (entries.length) {
    fail(field, `(tmpcopyup) over ${mount.destination}, which holds files in the image: gcr does not copy them up`);
  }
}

/**
 * What the child does for one entry. A bind gets its flags as mount
 * attributes before it is attached (only per-mount flags mean anything on a
 * bind, as with a bind remount, and only those asked for are set); any other
 * mount takes them in its mount(2) call. A propagation type goes with a
 * bind's attributes, or in a mount(2) of its own after a fresh mount.
 */
function mountCalls(mount: OciMount, target: string, options: OciRunOptions, field: string): MountAction[] {
  const out: MountAction[] = [];
  if (mount.type === "cgroup" || mount.type === "cgroup2") {
    if (options.cgroupVersion === 2) {
      out.push({
        op: "mount",
        source: "cgroup2",
        target,
        type: "cgroup2",
        flags: mount.flags,
        data: "",
        resolve: "in-root",
      });
    } else {
      // cgroup v1: a tmpfs with the container's own folder of each hierarchy
      // bound in (read-only when asked), as runc does without a cgroup
      // namespace. The tmpfs itself stays writable, as runc leaves it
      // (mountCgroupV1: defaultMountFlags, no remount), in 1.1 as today.
      const base = mount.flags & ~MS.RDONLY;
      out.push({
        op: "mount",
        source: "tmpfs",
        target,
        type: "tmpfs",
        flags: base,
        data: "mode=755",
        resolve: "in-root",
      });
      for (const { name, dir } of options.cgroupHierarchies) {
        out.push({ op: "mkdir", path: `${target}/${name}` });
        out.push({
          op: "bind",
          source: dir,
          target: `${target}/${name}`,
          recursive: false,
          attributes: { set: mountAttributes(mount.flags) },
        });
        for (const alias of name.includes(",") ? name.split(",") : []) {
          out.push({ op: "symlink", target: name, path: `${target}/${alias}` });
        }
      }
    }
  } else if (mount.bind) {
    const propagation = mount.propagation & ~MS.REC;
    out.push({
      op: "bind",
      source: mount.source,
      target,
      recursive: mount.recursive,
      attributes: { set: mountAttributes(mount.flags), ...(propagation ? { propagation } : {}) },
    });
    return out;
  } else {
    if (!/^[a-z0-9_.]+$/.test(mount.type)) {
      fail(`${field}.type`, `${JSON.stringify(mount.type)} is not a file system type`);
    }
    const kernelFs = mount.type === "proc" || mount.type === "sysfs";
    out.push({
      op: "mount",
      source: mount.source || mount.type,
      target,
      type: mount.type,
      flags: mount.flags,
      data: mount.data,
      resolve: kernelFs ? "no-symlinks" : "in-root",
    });
  }
  if (mount.propagation) out.push({ op: "change", target, flags: mount.propagation, data: "" });
  return out;
}

/** A bind's MS_* flags as mount_setattr attributes (the per-mount ones; the rest belong to the file system). */
function mountAttributes(flags: number): number {
  const pairs: [number, number][] = [
    [MS.RDONLY, MOUNT_ATTR.RDONLY],
    [MS.NOSUID, MOUNT_ATTR.NOSUID],
    [MS.NODEV, MOUNT_ATTR.NODEV],
    [MS.NOEXEC, MOUNT_ATTR.NOEXEC],
    [MS.NODIRATIME, MOUNT_ATTR.NODIRATIME],
  ];
  return pairs.reduce((sum, [ms, attr]) => (flags & ms ? sum | attr : sum), 0);
}

/**
 * The folders device nodes go in (`/dev/cpu/0` for `/dev/cpu/0/cpuid`,
 * `--privileged`): on the fresh /dev tmpfs the child makes them (returned,
 * parents first); elsewhere gcr makes them in the root now, resolved inside it.
 */
export function deviceFolders(devices: readonly { path: string }[], root: string, freshDev: boolean): string[] {
  const folders = new Set<string>();
  for (const { path } of devices) {
    const parts = components(path, "linux.devices[].path").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) folders.add("/" + parts.slice(0, i).join("/"));
  }
  const inDev = [...folders].filter((dir) => freshDev && dir.startsWith("/dev/"));
  const elsewhere = [...folders].filter((dir) => !inDev.includes(dir) && dir !== "/dev");
  if (elsewhere.length) {
    const rootFd = openFd(root, O.PATH | O.DIRECTORY);
    try {
      for (const dir of elsewhere) closeFd(ensureDirInRoot(rootFd, dir.slice(1)));
    } finally {
      closeFd(rootFd);
    }
  }
  return inDev.sort((a, b) => a.length - b.length);
}

/**
 * Whether a masked or read-only path is a folder, a file, or absent in the
 * container, decided by gcr since the chain cannot branch on a failed mount.
 * Under /proc and /sys the kernel's entries are the host's too; any other
 * path is the image's, looked up in the rootfs as the container will see it
 * (symlinks resolved inside it, RESOLVE_IN_ROOT).
 */
export function containerPathKind(root: string): (path: string) => PathKind {
  return (path) => {
    if (/^\/(proc|sys)(\/|$)/.test(path)) return hostPathKind(path);
    const rootFd = openFd(root, O.PATH | O.DIRECTORY);
    try {
      const kind = atInRoot(rootFd, path, (info) => info.isDirectory ? "directory" as const : "file" as const);
      return typeof kind === "number" ? undefined : kind;
    } finally {
      closeFd(rootFd);
    }
  };
}
