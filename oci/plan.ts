/**
 * An OCI bundle's config.json as gcr's steps: the same step modules gcr run
 * uses where config.json asks for the same thing, config.json's own
 * mounts, sysctls, rlimits and devices where it asks for more. What gcr
 * cannot honour was refused by oci/spec/ or is refused here, by field.
 *
 * @module
 */
import { chainLayout } from "../ffi/chain.ts";
import { CLONE } from "../ffi/constants.ts";
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
import { type IdPlan, type SecurityPlan } from "../steps/plan.ts";
import type { IdMapping } from "../steps/step.ts";
import { clearGroups } from "../steps/set_user.ts";
import { observedIds } from "../security/namespace_ids.ts";
import { readonlyPaths } from "../steps/readonly_paths.ts";
import { resetSignals } from "../steps/reset_signals.ts";
import { setHostname } from "../steps/set_hostname.ts";
import { call, num, type Step } from "../steps/step.ts";
import { setOomScoreAdj } from "../steps/set_oom_score_adj.ts";
import { becomeRoot } from "../steps/become_root.ts";
import { consolePty } from "../steps/console_pty.ts";
import { joinNamespacePaths } from "../steps/join_namespace_paths.ts";
import { makeDevices } from "../steps/make_devices.ts";
import { mountSpecMounts } from "../steps/mount_spec_mounts.ts";
import { moveRoot } from "../steps/move_root.ts";
import { chrootRoot } from "../steps/chroot_root.ts";
import { preserveFds } from "../steps/preserve_fds.ts";
import { readonlyRoot } from "../steps/readonly_root.ts";
import { rootPropagation } from "../steps/root_propagation.ts";
import { setRlimits } from "../steps/set_rlimits.ts";
import { writeSysctls } from "../steps/write_sysctls.ts";
import { fail } from "./spec/fields.ts";
import type { OciSpec } from "./spec/spec.ts";
import type { NamespaceType } from "./spec/linux.ts";
import { containerPathKind, deviceFolders, mountActions } from "./mount_plan.ts";
import { securityPlan, setupSecurity } from "./security_plan.ts";
import { runCreateHooks } from "../steps/run_hooks.ts";
import { pidNamespaceVia } from "../steps/join_namespaces.ts";
import { withHome } from "../security/user.ts";
import { readInRoot } from "../ffi/safe_fs.ts";

/** Descriptors the child gets from gcr create at fixed numbers (ChainPipes.inherit). */
export interface CreateFds {
  readonly startFifo: number;
  readonly reportFifo: number;
  readonly consoleSocket?: number;
  /** --preserve-fds N: the caller's fds 3…3+N-1 stay the command's (the chain's own move up). */
  readonly preserved: number;
}

export interface OciRunOptions {
  /** The container's id: hooks read it in the state. */
  readonly id: string;
  readonly noPivot: boolean;
  /** The container's cgroup.procs files and how they were made (for trace). */
  readonly cgroup?: { readonly setup: readonly string[]; readonly procs: readonly string[] };
  /** v1 hierarchies (mount point and the container's own folder) for `cgroup` mounts. */
  readonly cgroupHierarchies: readonly { readonly name: string; readonly dir: string }[];
  readonly cgroupVersion: 1 | 2;
  /** The process's environment as processEnv makes it, when the caller has it already (create reads it once). */
  readonly env?: readonly string[];
}

/** The /proc/<pid>/ns names of config.json's namespace types. */
export const NS_FILE: Readonly<Record<NamespaceType, string>> = {
  user: "user",
  mount: "mnt",
  pid: "pid",
  uts: "uts",
  ipc: "ipc",
  network: "net",
  cgroup: "cgroup",
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

/**
 * config.json's process environment as the process execs with it: with
 * HOME from the root's /etc/passwd when it has none, as runc sets it
 * (security/user.ts, withHome).
 */
export function processEnv(spec: Pick<OciSpec, "process" | "root">): string[] {
  return withHome(spec.process.env, spec.process.user.uid, () => readInRoot(spec.root.path, "/etc/passwd"));
}

/**
 * The ids of a container without a user namespace of its own: those of the
 * namespace gcr runs in, every one as itself (all of the host's, or those
 * rootless podman's namespace maps), and whether that namespace allows
 * setgroups.
 */
export function ownNamespaceIds(): IdPlan {
  const seen = observedIds(Deno.pid);
  const identity = (maps: readonly IdMapping[]) => maps.map((m) => ({ ...m, outside: m.inside }));
  return { uid: identity(seen.uid), gid: identity(seen.gid), via: "direct", setgroups: seen.setgroups, writer: "root" };
}

/** How the container's ids map: config.json's mappings in a new user namespace, or the host's own. */
function idPlan(spec: OciSpec, newUser: boolean): IdPlan {
  if (!newUser) return ownNamespaceIds();
  const rootless = Deno.uid() !== 0;
  return {
    uid: spec.linux.uidMappings,
    gid: spec.linux.gidMappings,
    via: "direct",
    setgroups: rootless ? "deny" : "allow",
    writer: rootless ? "user" : "root",
  };
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
  // Without a mount namespace the container's mounts are made in the
  // host's (as runc does; gcr delete detaches them again) and the root is
  // chroot'ed into. Masking paths or changing the root's propagation there
  // would change the host's own /proc, /sys and mounts: refused, as runc
  // refuses the first.
  const ownMounts = types.has("mount");
  if (!ownMounts) {
    for (const field of ["maskedPaths", "readonlyPaths"] as const) {
      if (linux[field].length) fail(`linux.${field}`, "needs a mount namespace (it would change the host's own paths)");
    }
    if (linux.rootfsPropagation) {
      fail("linux.rootfsPropagation", "needs a mount namespace (it would change the host's mounts)");
    }
  }
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
  const gate: StartGate = { fifoFd: layout.firstFree, reportFd: layout.firstFree + 1 };
  const plan = { root, hostname: spec.hostname ?? "", ids, cgroup: options.cgroup } as const;
  const hasCreateHooks = ["prestart", "createRuntime", "createContainer"].some((kind) =>
    spec.hooks[kind as keyof typeof spec.hooks].length
  );
  const hookState = { id: options.id, status: "created" as const, bundle: spec.bundle, annotations: spec.annotations };
  // createContainer hooks run as runc's do, from its init before it drops
  // anything: root of the container's user namespace, every capability, no
  // seccomp; in all of the container's namespaces.
  const hookJoin = () => {
    const namespaces = linux.namespaces.map((n) => NS_FILE[n.type]);
    return {
      namespaces,
      cgroupProcs: options.cgroup?.procs ?? [],
      ids,
      security: setupSecurity(),
      env: spec.process.env,
      pidVia: spec.hooks.createContainer.length ? pidNamespaceVia(namespaces, Deno.uid()) : "parent" as const,
    };
  };
  const maskedAndReadonly = [
    ...(linux.maskedPaths.length ? [maskPaths(linux.maskedPaths, containerPathKind(root))] : []),
    ...(linux.readonlyPaths.length ? [readonlyPaths(linux.readonlyPaths, containerPathKind(root))] : []),
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
    ...(newUser ? [mapIds(plan)] : []),
    ...(spec.process.oomScoreAdj !== undefined ? [setOomScoreAdj(spec.process.oomScoreAdj)] : []),
    ...(newUser ? [becomeRoot(), ...(ids.writer === "user" ? [nonDumpable()] : [])] : []),
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
    // Propagation must be private before the first mount, or mounts leak out.
    ...(ownMounts ? [makeMountsPrivate()] : []),
    bindRootfs(plan),
    openRoot(root, fd),
    mountSpecMounts(mountActions(spec, options), fd),
    // config.json's /dev tmpfs, once mounted, is opened like gcr run's (steps/in_root.ts).
    ...(hasDev ? [dev.step, bindDevices(dev.fd), linkDev(dev.fd)] : []),
    ...(devices.length ? [makeDevices(devices, devFd, deviceFolders(devices, root, hasDev))] : []),
    ...(hasCreateHooks ? [runCreateHooks(spec.hooks, hookState, spec.bundle, hookJoin())] : []),
    ...(!ownMounts
      ? [chrootRoot(root, devFd)]
      : options.noPivot
      ? [moveRoot(root, devFd)]
      : [pivotRoot(plan, devFd), detachOldRoot()]),
    ...(linux.rootfsPropagation ? [rootPropagation(linux.rootfsPropagation)] : []),
    ...(Object.keys(linux.sysctl).length ? [writeSysctls(Object.entries(linux.sysctl), firstFree)] : []),
    ...maskedAndReadonly,
    ...(spec.root.readonly ? [readonlyRoot()] : []),
    ...(fds.consoleSocket !== undefined && spec.process.terminal ? [consolePty(layout.firstFree + 2, firstFree)] : []),
    setUmask(spec.process.user.umask),
    ...(spec.process.rlimits.length ? [setRlimits(spec.process.rlimits)] : []),
    ...(fds.preserved ? [preserveFds(fds.preserved)] : []),
    // A made user namespace clears them in map-ids; a joined one may deny it.
    ...(!types.has("user") && !security.user && ids.setgroups === "allow" ? [clearGroups()] : []),
    ...hardening(security, ids),
    resetSignals(),
    exec({ workdir: spec.process.cwd, env: options.env ?? processEnv(spec), argv: spec.process.args }, {
      handTerminal: false,
      awaitStart: gate,
      outliveGcr: true,
      layout,
    }),
  ];
}

/**
 * The command's umask: config.json's, else runc's 0022 rather than whatever
 * the engine that ran gcr had (and make-devices set 0 for its nodes).
 */
function setUmask(umask: number | undefined): Step {
  const mask = umask ?? 0o022;
  return {
    name: "set-umask",
    why: umask === undefined ? "runc's default umask, 0022" : "config.json's umask",
    parent: [],
    child: [call("umask", num(mask, `0${mask.toString(8).padStart(3, "0")}`))],
  };
}
