import { CHAIN_FDS } from "../ffi/chain.ts";
import { CLONE, O, O_CLOEXEC } from "../ffi/constants.ts";
import { call, flags, num, type ParentOp, rawSyscall, shown, type Step } from "./step.ts";
import { SIGNALS, SYS } from "../ffi/constants.ts";
import { inUserNamespace } from "../host/rootless.ts";

/** A namespace as /proc/<pid>/ns names it, and its clone flag. */
export const NAMESPACE_FILES = {
  user: "NEWUSER",
  ipc: "NEWIPC",
  uts: "NEWUTS",
  net: "NEWNET",
  cgroup: "NEWCGROUP",
  mnt: "NEWNS",
  pid: "NEWPID",
} as const satisfies Record<string, keyof typeof CLONE>;

export type NamespaceFile = keyof typeof NAMESPACE_FILES;

/**
 * The order a process joins namespaces in: the user namespace first (it
 * grants the capabilities the other setns calls need in the container's
 * namespaces), the mount namespace last (it also moves the root and the
 * working directory, after which /proc/<pid> of the host is out of reach).
 * PID is not here: the parent sets it for its child (see cloneIntoContainer).
 */
const JOIN_ORDER: readonly NamespaceFile[] = ["user", "ipc", "uts", "net", "cgroup", "mnt"];

/** The namespaces of `types` that a process joins by setns, in joining order. */
export function joinOrder(types: readonly string[]): NamespaceFile[] {
  return JOIN_ORDER.filter((type) => types.includes(type));
}

/**
 * How a process gets into a container's PID namespace (ExecPlan.pidVia).
 * Rootless, gcr cannot join it for its child and come back (that needs
 * CAP_SYS_ADMIN in the user namespace owning each): the child joins it from
 * the container's user namespace and forks into it. uid 0 of a user
 * namespace of its own (rootless podman's) is rootless here too: it may
 * join the container's PID namespace, which its namespace owns, but not go
 * back to its own, which the host's owns; its child, already in the
 * container's user namespace, needs only join the PID namespace and fork.
 */
export function pidNamespaceVia(
  namespaces: readonly string[],
  uid: number | null,
  inOwnUserNamespace = inUserNamespace(),
): "parent" | "fork" {
  if (uid === 0 && !inOwnUserNamespace) return "parent";
  if (uid !== 0 && namespaces.includes("pid") && !namespaces.includes("user")) {
    throw new Error("gcr exec: a container without a user namespace of its own can be entered only as root");
  }
  return "fork";
}

/**
 * Creates the process that enters a running container: no new namespaces,
 * but the parent sets its PID namespace for children to the container's
 * just for the clone (a process cannot move itself into a PID namespace,
 * only its children), so the command gets a pid inside the container.
 */
export function cloneIntoContainer(pid: number, pidNamespace: boolean): Step {
  return {
    name: "clone",
    why: pidNamespace
      ? "a new process in the container's PID namespace: gcr joins it for its next child only, then returns"
      : "a new process, to join the container's namespaces",
    parent: [{
      op: "clone",
      flags: 0,
      show: "SIGCHLD",
      // Born into the container's PID namespace, it is visible there at once.
      nonDumpable: true,
      ...(pidNamespace ? { pidNamespace: `/proc/${pid}/ns/pid` } : {}),
    }],
    child: [],
  };
}

/**
 * Opens the container's namespace files while the host's /proc is still
 * this process's /proc, at known descriptors (the lowest free ones: 5, 6, …
 * when close-fds left 0-4),
 * so the setns calls can name them after the mount namespace has changed.
 */
export function openNamespaces(pid: number, types: readonly NamespaceFile[]): Step {
  return {
    name: "open-namespaces",
    why: "the container's namespace files, opened from the host's /proc before any of them is joined",
    parent: [],
    child: types.map((type) =>
      call("open", `/proc/${pid}/ns/${type}`, flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["RDONLY", "CLOEXEC"]))
    ),
  };
}

/**
 * Joins the namespaces opened by open-namespaces (same order), then closes
 * them. `cgroupProcs`: the container's cgroup.procs files, which gcr writes
 * this process's pid into first, so it is limited as the container is.
 */
export function joinNamespaces(
  types: readonly NamespaceFile[],
  cgroupProcs: readonly string[],
  base: number = CHAIN_FDS.firstFree,
  options: { readonly opened?: readonly NamespaceFile[]; readonly name?: string; readonly close?: boolean } = {},
): Step {
  // Where open-namespaces put each file: base + its place in the opened list.
  const opened = options.opened ?? types;
  const parent: ParentOp[] = cgroupProcs.length ? [{ op: "join-cgroup", setup: [], procs: cgroupProcs }] : [];
  return {
    name: options.name ?? "join-namespaces",
    why: "the container's user namespace first (it grants the rest), its mount namespace last; " +
      "in its cgroup before the cgroup namespace",
    parent,
    child: [
      ...types.map((type) => {
        const fd = base + opened.indexOf(type);
        return rawSyscall(
          "setns",
          SYS.setns,
          num(fd, `${fd} /* ${type} */`),
          flags(CLONE, "CLONE_", [NAMESPACE_FILES[type]]),
        );
      }),
      ...(options.close === false ? [] : [call("close_range", base, num(0xffffffff, "~0U"), 0)]),
    ],
  };
}

/**
 * Rootless exec: gcr may not join a PID namespace itself (setns(CLONE_NEWPID)
 * needs CAP_SYS_ADMIN in gcr's own user namespace), but the child may, once
 * it is in the container's user namespace, where it has every capability.
 * That moves only its future children, so it forks: libc's clone, whose new
 * process starts the rest of the chain (ChildCall.forks) and, by
 * CLONE_PARENT, is gcr's child, not its own. This process's chain ends here.
 */
export function forkIntoPidNamespace(): Step {
  return {
    name: "fork-into-pid-namespace",
    why: "a PID namespace joined applies to children only: a child, adopted by gcr (CLONE_PARENT), runs the rest",
    parent: [],
    child: [{
      ...call(
        "clone",
        shown(null, "setcontext"),
        shown(null, "<its own stack>"),
        num(CLONE.PARENT | SIGNALS.SIGCHLD, "CLONE_PARENT|SIGCHLD"),
        shown(null, "<the rest of the chain>"),
      ),
      forks: true,
    }],
  };
}

/**
 * The forked process becomes the one gcr drives. It has already tied itself
 * to gcr's life (die-with-parent runs ahead of this step's gate): waiting
 * here untied, it would read end-of-file on its gate if gcr died, and go on.
 */
export function adoptChild(): Step {
  return {
    name: "adopt-child",
    why: "gcr drives the forked process from here; the one that forked it has exited and is reaped",
    parent: [{ op: "adopt-child" }],
    child: [],
  };
}
