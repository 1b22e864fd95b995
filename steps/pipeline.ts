/**
 * The container, step by step, in the order the kernel needs. This list is
 * what `gcr run` executes, `--trace` and `--step` walk, and `gcr explain`
 * prints.
 *
 * @module
 */
import { becomeRoot } from "./become_root.ts";
import { bindConsole } from "./bind_console.ts";
import { bindDevices } from "./bind_devices.ts";
import { bindInit } from "./bind_init.ts";
import { bindRootfs } from "./bind_rootfs.ts";
import { bindVolumes } from "./bind_volumes.ts";
import { bringUpLoopback } from "./bring_up_loopback.ts";
import { connectBridge } from "./connect_bridge.ts";
import { cloneNamespaces } from "./clone_namespaces.ts";
import { closeFds } from "./close_fds.ts";
import { detachOldRoot } from "./detach_old_root.ts";
import { dieWithParent } from "./die_with_parent.ts";
import { dropCapabilities, setCapabilities } from "./drop_capabilities.ts";
import { enterCgroup } from "./enter_cgroup.ts";
import { exec } from "./exec.ts";
import { installSeccomp } from "./install_seccomp.ts";
import { limitOpenFiles } from "./limit_open_files.ts";
import { linkDev } from "./link_dev.ts";
import { makeMountsPrivate } from "./make_mounts_private.ts";
import { maskPaths } from "./mask_paths.ts";
import { mapIds } from "./map_ids.ts";
import { mountDev } from "./mount_dev.ts";
import { mountDevpts } from "./mount_devpts.ts";
import { mountOverlay } from "./mount_overlay.ts";
import { mountProc } from "./mount_proc.ts";
import { mountShm } from "./mount_shm.ts";
import { mountSys } from "./mount_sys.ts";
import { mountTmp } from "./mount_tmp.ts";
import { noNewPrivs } from "./no_new_privs.ts";
import { nonDumpable } from "./non_dumpable.ts";
import { ownProcessGroup } from "./own_process_group.ts";
import { pivotRoot } from "./pivot_root.ts";
import type { ContainerPlan, IdPlan, SecurityPlan } from "./plan.ts";
import { CHAIN_FDS } from "../ffi/chain.ts";
import { consolePty } from "./console_pty.ts";
import {
  adoptChild,
  cloneIntoContainer,
  forkIntoPidNamespace,
  joinNamespaces,
  joinOrder,
  type NamespaceFile,
  openNamespaces,
} from "./join_namespaces.ts";
import { openDev, openRoot, type RootFd } from "./in_root.ts";
import { readonlyPaths } from "./readonly_paths.ts";
import { resetSignals } from "./reset_signals.ts";
import { setHostname } from "./set_hostname.ts";
import { clearGroups, setUser } from "./set_user.ts";
import { hookStdio } from "./hook_process.ts";
import { call, flags, type Step } from "./step.ts";
import { O, O_CLOEXEC } from "../ffi/constants.ts";

/** The steps that build and start a container from `plan`. */
export function containerSteps(plan: ContainerPlan): Step[] {
  const { security } = plan;
  // The root's descriptor: the lowest free once close-fds has left the chain's own.
  const fd: RootFd = { root: CHAIN_FDS.firstFree };
  // /dev is opened once it is mounted (open-dev): the steps after it get its descriptor too.
  const dev = openDev(fd);
  return [
    cloneNamespaces(plan),
    dieWithParent(),
    closeFds(),
    // Everything after this runs as the container's root, so ids come first.
    mapIds(plan),
    ...(plan.ids.writer === "user" ? [nonDumpable()] : []),
    enterCgroup(plan),
    setHostname(plan),
    ...(plan.network !== "host" ? [bringUpLoopback()] : []),
    ...(plan.bridge ? [connectBridge(plan.bridge)] : []),
    // Propagation must be private before the first mount, or mounts leak out.
    makeMountsPrivate(),
    // The container's root: an overlay on the image (or, with --rootfs-copy,
    // a copy of it bound onto itself); either way a mount point for the pivot.
    plan.overlay ? mountOverlay(plan) : bindRootfs(plan),
    // Opened once it is mounted: every target below is resolved from it.
    openRoot(plan.root, fd),
    // These mounts go into the rootfs before the pivot, while the host's /dev
    // and /proc (needed by bind-devices and mount-proc) are still reachable.
    mountDev(fd),
    dev.step,
    bindDevices(dev.fd),
    mountDevpts(plan, dev.fd),
    mountShm(dev.fd),
    linkDev(dev.fd),
    ...(plan.console ? [bindConsole({ console: plan.console }, dev.fd)] : []),
    ...(plan.init ? [bindInit({ init: plan.init }, dev.fd)] : []),
    mountProc(dev.fd),
    mountTmp(dev.fd),
    mountSys(plan, dev.fd),
    // Last before the pivot: the host paths must still be reachable.
    ...(plan.volumes.length ? [bindVolumes(plan, dev.fd)] : []),
    pivotRoot(plan, dev.fd),
    detachOldRoot(),
    // On the container's own /proc and /sys, while it still has CAP_SYS_ADMIN.
    ...(security.maskPaths ? [maskPaths(), readonlyPaths()] : []),
    ownProcessGroup(),
    limitOpenFiles(),
    ...hardening(security, plan.ids),
    resetSignals(),
    exec(plan, { handTerminal: plan.foreground !== false }),
  ];
}

/**
 * What takes away the process's privileges, in the order the kernel allows:
 * the same for a container's first process and for one `gcr exec` adds.
 */
export function hardening(security: SecurityPlan, ids: IdPlan): Step[] {
  // Without no_new_privs the kernel installs a filter only for a process
  // with CAP_SYS_ADMIN, so it goes first, while the process still has it (as
  // runc does); the filter must then allow the calls that follow (capset,
  // prctl, setresuid: every engine's profile does). With no_new_privs it
  // goes last, so the filter need not allow them.
  const early = security.seccomp && !security.noNewPrivs ? [installSeccomp(security.seccomp)] : [];
  const { user, capabilities } = security;
  return [
    ...early,
    // After the last mount: those need capabilities this drops. With a
    // user, only the bounding set here (runc's order, steps/drop_capabilities.ts).
    dropCapabilities(capabilities, user ? { userUid: user.uid } : {}),
    // After drop-capabilities: dropping from the bounding set needs
    // CAP_SETPCAP, which a non-zero uid no longer has; before
    // set-capabilities, which may take away the CAP_SETUID and CAP_SETGID
    // this needs.
    ...(user ? [setUser(user, ids), setCapabilities(capabilities, { userUid: user.uid })] : []),
    // Before the filter: without CAP_SYS_ADMIN the kernel installs one only
    // under no_new_privs.
    ...(security.noNewPrivs ? [noNewPrivs()] : []),
    // Last but the signal reset and exec: the chain's own write/read/execve
    // after it must pass the filter.
    ...(security.seccomp && security.noNewPrivs ? [installSeccomp(security.seccomp)] : []),
  ];
}

/** A process to start in a running container (`gcr exec`). */
export interface ExecPlan extends Pick<ContainerPlan, "argv" | "env" | "workdir" | "ids" | "security"> {
  /** The container's first process, as a host pid: its namespaces are joined. */
  readonly pid: number;
  /** The namespaces the container has of its own, as /proc/<pid>/ns names them. */
  readonly namespaces: readonly string[];
  /** The container's cgroup.procs files. */
  readonly cgroupProcs: readonly string[];
  /** Whether the process dies with gcr (not with exec -d, whose gcr returns at once). */
  readonly dieWithParent: boolean;
  /** The fd (from CHAIN_FDS.firstFree) of an engine's console socket: the process gets a pty of the container's. */
  readonly consoleSocket?: number;
  /** gcr exec -d: stdio becomes /dev/null (an engine's exec --detach keeps the pipes it passed). */
  readonly nullStdio?: boolean;
  /** A hook in the container's namespaces: stdio from the descriptors gcr passes (steps/hook_process.ts). */
  readonly hookStdio?: boolean;
  /** The program, when argv[0] is not it (a hook's path). */
  readonly file?: string;
  /**
   * How the process gets into the container's PID namespace: gcr sets it for
   * its next child (`parent`, as root), or the child forks into it from
   * inside the container's user namespace (`fork`, rootless).
   */
  readonly pidVia?: "parent" | "fork";
}

/** The steps that start a process inside a running container. */
export function execSteps(plan: ExecPlan): Step[] {
  const joins = joinOrder(plan.namespaces);
  const firstFree = CHAIN_FDS.firstFree + (plan.consoleSocket !== undefined ? 1 : 0) + (plan.hookStdio ? 2 : 0);
  const pidNamespace = plan.namespaces.includes("pid");
  // Rootless: the child joins the PID namespace itself, from inside the
  // container's user namespace, and forks into it (forkIntoPidNamespace).
  const fork = pidNamespace && plan.pidVia === "fork";
  const opened: NamespaceFile[] = fork ? [...joins, "pid"] : joins;
  return [
    cloneIntoContainer(plan.pid, pidNamespace && !fork),
    dieWithParent(),
    closeFds(firstFree),
    openNamespaces(plan.pid, opened),
    ...(fork
      ? [
        // The user namespace only when the container has one of its own: gcr may be in it already.
        joinNamespaces(opened.includes("user") ? ["user", "pid"] : ["pid"], [], firstFree, {
          opened,
          name: opened.includes("user") ? "join-user-and-pid" : "join-pid",
          close: false,
        }),
        forkIntoPidNamespace(),
        // The forked process's first call: a parent's death signal is not inherited.
        dieWithParent(),
        adoptChild(),
        joinNamespaces(joins.filter((type) => type !== "user"), plan.cgroupProcs, firstFree, { opened }),
      ]
      : [joinNamespaces(joins, plan.cgroupProcs, firstFree)]),
    // In the container's user namespace gcr's host ids may be nobody (its
    // maps need not include them): root there unless set-user switches.
    ...(plan.namespaces.includes("user") && !plan.security.user ? [becomeRoot()] : []),
    ...(plan.consoleSocket !== undefined ? [consolePty(plan.consoleSocket, firstFree)] : [ownProcessGroup()]),
    ...(plan.nullStdio ? [nullStdio(firstFree)] : []),
    ...(plan.hookStdio ? [hookStdio()] : []),
    limitOpenFiles(),
    // gcr's own groups stay out, as runc sets every process's (set-user sets them for a user).
    ...(!plan.security.user && plan.ids.setgroups === "allow" ? [clearGroups()] : []),
    ...hardening(plan.security, plan.ids),
    resetSignals(),
    exec(plan, { outliveGcr: !plan.dieWithParent, ...(plan.file ? { file: plan.file } : {}) }),
  ];
}

/** exec -d: nobody reads or writes the process's stdio any more; /dev/null of the container's, as docker exec -d. */
function nullStdio(firstFree: number): Step {
  return {
    name: "null-stdio",
    why: "a detached process's stdin, stdout and stderr are the container's /dev/null: gcr exec -d returns",
    parent: [],
    child: [
      call("open", "/dev/null", flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["RDWR", "CLOEXEC"])),
      ...[0, 1, 2].map((fd) => call("dup3", firstFree, fd, 0)),
      call("close", firstFree),
    ],
  };
}
