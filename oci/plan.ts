/**
 * An OCI bundle's config.json as gcr's steps: the same step modules gcr run
 * uses where config.json asks for the same thing, config.json's own
 * mounts, sysctls, rlimits and devices where it asks for more. What gcr
 * cannot honour was refused by oci/spec/ or is refused here, by field.
 *
 * @module
 */
import { chainLayout } from "../ffi/chain.ts";
import { CLONE, ERRNO, MOUNT_ATTR, MS, O } from "../ffi/constants.ts";
import { openFd } from "../ffi/fds.ts";
import { closeFd, ensureDirInRoot, openInRoot } from "../ffi/safe_fs.ts";
import { CAPABILITIES } from "../ffi/capabilities.ts";
import { cachedCompile } from "../security/seccomp/cache.ts";
import { profileFromOci } from "../security/seccomp/oci.ts";
import { bindDevices, DEVICES } from "../steps/bind_devices.ts";
import { bindRootfs } from "../steps/bind_rootfs.ts";
import { closeFds } from "../steps/close_fds.ts";
import { detachOldRoot } from "../steps/detach_old_root.ts";
import { dieWithParent } from "../steps/die_with_parent.ts";
import { enterCgroup } from "../steps/enter_cgroup.ts";
import { exec, type StartGate } from "../steps/exec.ts";
import { nonDumpable } from "../steps/non_dumpable.ts";
import { DEV_LINKS, linkDev } from "../steps/link_dev.ts";
import { makeMountsPrivate } from "../steps/make_mounts_private.ts";
import { mapIds } from "../steps/map_ids.ts";
import { maskPaths } from "../steps/mask_paths.ts";
import { hardening } from "../steps/pipeline.ts";
import { openDev, openRoot, type RootFd } from "../steps/in_root.ts";
import { pivotRoot } from "../steps/pivot_root.ts";
import { type ContainerUser, type IdPlan, type SecurityPlan } from "../steps/plan.ts";
import { readonlyPaths } from "../steps/readonly_paths.ts";
import { resetSignals } from "../steps/reset_signals.ts";
import { setHostname } from "../steps/set_hostname.ts";
import { call, type Step } from "../steps/step.ts";
import { becomeRoot } from "../steps/become_root.ts";
import { consolePty } from "../steps/console_pty.ts";
import { joinNamespacePaths } from "../steps/join_namespace_paths.ts";
import { makeDevices } from "../steps/make_devices.ts";
import { type MountAction, mountSpecMounts } from "../steps/mount_spec_mounts.ts";
import { moveRoot } from "../steps/move_root.ts";
import { preserveFds } from "../steps/preserve_fds.ts";
import { readonlyRoot } from "../steps/readonly_root.ts";
import { rootPropagation } from "../steps/root_propagation.ts";
import { setRlimits } from "../steps/set_rlimits.ts";
import { writeSysctls } from "../steps/write_sysctls.ts";
import { SpecError } from "./spec/fields.ts";
import type { OciMount } from "./spec/mounts.ts";
import type { OciSpec } from "./spec/spec.ts";

/** Descriptors the child gets from gcr create at fixed numbers (ChainPipes.inherit). */
export interface CreateFds {
  readonly startFifo: number;
  readonly devNull: number;
  readonly consoleSocket?: number;
  /** --preserve-fds N: the caller's fds 3…3+N-1 stay the command's (the chain's own move up). */
  readonly preserved: number;
}

export interface OciRunOptions {
  readonly noPivot: boolean;
  /** The container's cgroup.procs files and how they were made (for trace). */
  readonly cgroup?: { readonly setup: readonly string[]; readonly procs: readonly string[] };
  /** v1 hierarchies (mount point and the container's own folder) for `cgroup` mounts. */
  readonly cgroupHierarchies: readonly { readonly name: string; readonly dir: string }[];
  readonly cgroupVersion: 1 | 2;
}

const fail = (field: string, message: string): never => {
  throw new SpecError(field, `config.json: ${field} ${message}`);
};

/** Sysctls that belong to a namespace (IPC, UTS, network): the only ones a container may set. */
export function namespacedSysctl(name: string, namespaces: ReadonlySet<string>): boolean {
  if (!/^[a-z0-9_]+(\.[a-z0-9_-]+)+$/.test(name)) return false;
  if (name.startsWith("net.")) return namespaces.has("network");
  if (name.startsWith("fs.mqueue.")) return namespaces.has("ipc");
  if (/^kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)$/.test(name)) {
    return namespaces.has("ipc");
  }
  if (/^kernel\.(hostname|domainname)$/.test(name)) return namespaces.has("uts");
  return false;
}

/** How the container's ids map: config.json's mappings in a new user namespace, or the host's own. */
function idPlan(spec: OciSpec, newUser: boolean): IdPlan {
  if (!newUser) {
    const all = [{ inside: 0, outside: 0, count: 4294967295 }];
    return { uid: all, gid: all, via: "direct", setgroups: "allow", writer: "root" };
  }
  const rootless = Deno.uid() !== 0;
  return {
    uid: spec.linux.uidMappings,
    gid: spec.linux.gidMappings,
    via: "direct",
    setgroups: rootless ? "deny" : "allow",
    writer: rootless ? "user" : "root",
  };
}

/** The capabilities in gcr's own bounding set (/proc/self/status CapBnd). */
function ownBoundingSet(): number[] {
  const hex = Deno.readTextFileSync("/proc/self/status").match(/^CapBnd:\s*([0-9a-f]+)$/m)?.[1] ?? "0";
  const mask = BigInt(`0x${hex}`);
  return Object.values(CAPABILITIES).filter((cap) => (mask >> BigInt(cap)) & 1n);
}

/** config.json's process as gcr's security plan: capabilities, user, no_new_privs, seccomp. */
export function securityPlan(spec: Pick<OciSpec, "process" | "linux">, field = "process"): SecurityPlan {
  const { process } = spec;
  const caps = process.capabilities;
  // No capabilities in config.json: runc leaves the process its own, so gcr
  // keeps its own bounding set (not every capability: a host may lack some,
  // as this one lacks CAP_SYS_RESOURCE, and capset cannot add them).
  const keep = new Set(caps ? caps.bounding : ownBoundingSet());
  if (caps) {
    // gcr keeps one set for bounding, effective and permitted (as Docker's
    // defaults are); a process config.json gives fewer effective ones than
    // it may have is not something its chain can express.
    for (const set of ["effective", "permitted"] as const) {
      if (
        process.user.uid === 0 && (caps[set].length !== caps.bounding.length || caps[set].some((c) => !keep.has(c)))
      ) {
        fail(`${field}.capabilities.${set}`, "must equal the bounding set for a root process (gcr keeps one set)");
      }
    }
    // For uid 0 the kernel gives an exec'd program the whole bounding set
    // whatever the inheritable and ambient sets hold (capabilities(7): root's
    // file sets count as full), so sets within it change nothing there. For
    // another uid they would, and gcr does not raise ambient capabilities.
    for (const set of ["inheritable", "ambient"] as const) {
      if (caps[set].length && (process.user.uid !== 0 || caps[set].some((c) => !keep.has(c)))) {
        fail(`${field}.capabilities.${set}`, "is supported by gcr only for uid 0 and within the bounding set");
      }
    }
  }
  const env = new Map(process.env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  const { uid, gid, additionalGids } = process.user;
  const user: ContainerUser | undefined = uid !== 0 || gid !== 0 || additionalGids.length
    ? { uid, gid, groups: additionalGids, home: env.get("HOME") ?? "/" }
    : undefined;
  let seccomp: Uint8Array | undefined;
  if (spec.linux.seccomp) seccomp = cachedCompile(profileFromOci(spec.linux.seccomp));
  return {
    capabilities: keep,
    noNewPrivs: process.noNewPrivileges,
    maskPaths: false,
    ...(user ? { user } : {}),
    ...(seccomp ? { seccomp } : {}),
  };
}

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
      // bound in (read-only when asked), as runc does without a cgroup namespace.
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
      if (mount.readOnly) {
        out.push({ op: "change", target, flags: base | MS.REMOUNT | MS.RDONLY, data: "mode=755" });
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
function deviceFolders(devices: readonly { path: string }[], root: string, freshDev: boolean): string[] {
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
 * The steps for `gcr create`: config.json's namespaces (made, or joined by
 * path), ids, cgroup, hostname, mounts, pivot, sysctls, masked paths,
 * rlimits, the console, hardening, and the start gate before exec.
 */
export function ociSteps(
  spec: OciSpec,
  fds: CreateFds,
  options: OciRunOptions,
  security: SecurityPlan = securityPlan(spec),
): Step[] {
  const linux = spec.linux;
  const types = new Set(linux.namespaces.map((n) => n.type));
  const create = linux.namespaces.filter((n) => !n.path);
  const joined = linux.namespaces.filter((n) => n.path);
  if (!types.has("mount")) fail("linux.namespaces", "must include a mount namespace (gcr pivots the root in one)");
  const newUser = create.some((n) => n.type === "user");
  const joinedPid = joined.find((n) => n.type === "pid");
  // Made at clone: all but cgroup, which enter-cgroup makes once the child is in its cgroup.
  const cloneFlags = create.filter((n) => n.type !== "cgroup").reduce((sum, n) => sum | n.flag, 0);
  const ids = idPlan(spec, newUser);
  if (joined.some((n) => n.type === "user") && newUser) {
    fail("linux.namespaces", "cannot both make and join a user namespace");
  }
  for (const [name] of Object.entries(linux.sysctl)) {
    if (!namespacedSysctl(name, types)) {
      fail(`linux.sysctl.${name}`, "is not a sysctl of the container's own namespaces (it would change the host)");
    }
  }
  if (linux.devices.length && newUser) {
    fail("linux.devices", "cannot be made in a user namespace (mknod needs CAP_MKNOD on the host)");
  }
  for (const [i, device] of linux.devices.entries()) {
    if ((device.uid ?? 0) !== 0 || (device.gid ?? 0) !== 0) {
      fail(`linux.devices[${i}]`, "uid and gid other than 0 are not supported by gcr");
    }
  }
  if (spec.process.terminal && fds.consoleSocket === undefined) {
    fail("process.terminal", "needs --console-socket: gcr create returns, so the pty's master must go to the engine");
  }
  const layout = chainLayout(fds.preserved);
  const inherited = 2 + (fds.consoleSocket !== undefined ? 1 : 0);
  const firstFree = layout.firstFree + inherited;
  // The root's descriptor while mounts are made (steps/in_root.ts): the lowest free one then.
  const fd: RootFd = { root: firstFree };
  const dev = openDev(fd);
  const root = spec.root.path;
  const hasDev = spec.mounts.some((m) => m.destination.replace(/\/+$/, "") === "/dev" && !m.bind);
  const devFd = hasDev ? dev.fd : fd;
  // The nodes gcr makes in every fresh /dev (bind-devices, link-dev) are not
  // made twice when config.json lists them too (podman --privileged lists all).
  const standard = new Set([...DEVICES.map((name) => `/dev/${name}`), ...DEV_LINKS.map(([, name]) => `/dev/${name}`)]);
  const devices = linux.devices.filter((device) => !(hasDev && standard.has(device.path)));
  const joinPaths = joined.filter((n) => n.type !== "pid").sort((
    a,
    b,
  ) => (a.type === "user" ? -1 : b.type === "user" ? 1 : 0));
  const gate: StartGate = { fifoFd: layout.firstFree, nullFd: layout.firstFree + 1 };
  const plan = { root, hostname: spec.hostname ?? "", ids, cgroup: options.cgroup } as const;
  const maskedAndReadonly = [
    ...(linux.maskedPaths.length ? [maskPaths(linux.maskedPaths)] : []),
    ...(linux.readonlyPaths.length ? [readonlyPaths(linux.readonlyPaths)] : []),
  ];
  return [
    {
      name: "clone",
      why: "config.json's new namespaces for the container's first process" +
        (joinedPid ? "; its PID namespace is joined through gcr" : ""),
      parent: [{
        op: "clone",
        flags: cloneFlags,
        show: [...Object.entries(CLONE).filter(([, v]) => (cloneFlags & v) === v).map(([n]) => `CLONE_${n}`), "SIGCHLD"]
          .join("|"),
        ...(joinedPid?.path ? { pidNamespace: joinedPid.path } : {}),
        nonDumpable: !newUser || ids.writer === "root",
      }],
      child: [],
    },
    dieWithParent(),
    closeFds(firstFree),
    ...(newUser ? [mapIds(plan), becomeRoot(), ...(ids.writer === "user" ? [nonDumpable()] : [])] : []),
    ...(joinPaths.length
      ? [joinNamespacePaths(joinPaths.map((n) => ({ type: n.type, path: n.path!, flag: n.flag })), firstFree)]
      : []),
    ...(options.cgroup || create.some((n) => n.type === "cgroup")
      ? [enterCgroup(plan, create.some((n) => n.type === "cgroup"))]
      : []),
    ...(spec.hostname !== undefined && types.has("uts") ? [setHostname(plan)] : []),
    ...(spec.domainname
      ? [{
        name: "set-domainname",
        why: "config.json's domainname, in the container's UTS namespace",
        parent: [],
        child: [call("setdomainname", spec.domainname, spec.domainname.length)],
      }]
      : []),
    makeMountsPrivate(),
    bindRootfs(plan),
    openRoot(root, fd),
    mountSpecMounts(mountActions(spec, options), fd),
    // config.json's /dev tmpfs, once mounted, is opened like gcr run's (steps/in_root.ts).
    ...(hasDev ? [dev.step, bindDevices(dev.fd), linkDev(dev.fd)] : []),
    ...(devices.length ? [makeDevices(devices, devFd, deviceFolders(devices, root, hasDev))] : []),
    ...(options.noPivot ? [moveRoot(root, devFd)] : [pivotRoot(plan, devFd), detachOldRoot()]),
    ...(linux.rootfsPropagation ? [rootPropagation(linux.rootfsPropagation)] : []),
    ...(Object.keys(linux.sysctl).length ? [writeSysctls(Object.entries(linux.sysctl), firstFree)] : []),
    ...maskedAndReadonly,
    ...(spec.root.readonly ? [readonlyRoot()] : []),
    ...(fds.consoleSocket !== undefined && spec.process.terminal ? [consolePty(layout.firstFree + 2, firstFree)] : []),
    ...(spec.process.user.umask !== undefined
      ? [{ name: "set-umask", why: "config.json's umask", parent: [], child: [call("umask", spec.process.user.umask)] }]
      : []),
    ...(spec.process.rlimits.length ? [setRlimits(spec.process.rlimits)] : []),
    ...(fds.preserved ? [preserveFds(fds.preserved)] : []),
    ...hardening(security, ids),
    resetSignals(),
    exec({ workdir: spec.process.cwd, env: spec.process.env, argv: spec.process.args }, {
      handTerminal: false,
      awaitStart: gate,
      outliveGcr: true,
      layout,
    }),
  ];
}
