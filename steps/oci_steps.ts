/**
 * Steps an OCI bundle needs beyond gcr run's: config.json's mounts in their
 * order, sysctls, rlimits, device nodes, a pty sent over the console socket,
 * namespaces joined by path, a read-only root. Each is data, like every
 * other step, so trace and explain show them the same way.
 *
 * @module
 */
import {
  CLONE,
  F_SETFD,
  LAYOUT,
  MS,
  O,
  O_CLOEXEC,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  SCM_RIGHTS,
  SOL_SOCKET,
  SYS,
  TIOCGPTPEER,
  TIOCSCTTY,
  TIOCSPTLCK,
} from "../ffi/constants.ts";
import type { ChildCall } from "../ffi/chain.ts";
import {
  type BindAttributes,
  bindInRoot,
  changeMountInRoot,
  closeRoot,
  mkdirInRoot,
  mknodInRoot,
  mountInRoot,
  type Resolve,
  type RootFd,
  showMountFlags,
  symlinkInRoot,
} from "./in_root.ts";
import { call, flags, NULL, num, rawSyscall, shown, type Step } from "./step.ts";
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

/** Joins namespaces given by path in config.json (e.g. a network namespace an engine made). */
export function joinNamespacePaths(
  paths: readonly { type: string; path: string; flag: number }[],
  first: number,
): Step {
  return {
    name: "join-namespace-paths",
    why: "namespaces config.json names by path are joined, not made; the user namespace first",
    parent: [],
    child: paths.flatMap(({ type, path, flag }) => [
      call("open", path, flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["RDONLY", "CLOEXEC"])),
      rawSyscall(
        "setns",
        SYS.setns,
        num(first, `${first} /* ${type} */`),
        num(flag, Object.entries(CLONE).find(([, v]) => v === flag)?.[0] ?? String(flag)),
      ),
      call("close", first),
    ]),
  };
}

/**
 * Writes config.json's sysctls through the container's own /proc/sys, after
 * the pivot and before /proc/sys is made read-only. Only namespaced ones
 * are accepted (checked by the planner), so none of this reaches the host.
 */
export function writeSysctls(sysctl: readonly (readonly [string, string])[], firstFree: number): Step {
  return {
    name: "write-sysctls",
    why: "config.json's sysctls, in the container's own namespaces, through its /proc/sys",
    parent: [],
    child: sysctl.flatMap(([name, value]) => [
      call(
        "open",
        `/proc/sys/${name.replaceAll(".", "/")}`,
        flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["WRONLY", "CLOEXEC"]),
      ),
      call("write", num(firstFree, `${firstFree} /* ${name} */`), value, value.length),
      call("close", firstFree),
    ]),
  };
}

/** setrlimit for each of config.json's rlimits (raising a hard limit needs CAP_SYS_RESOURCE on the host). */
export function setRlimits(rlimits: readonly { type: string; resource: number; soft: bigint; hard: bigint }[]): Step {
  const { rlimit } = LAYOUT;
  return {
    name: "set-rlimits",
    why: "config.json's resource limits, inherited by the command across exec",
    parent: [],
    child: rlimits.map(({ type, resource, soft, hard }) => {
      const bytes = new Uint8Array(rlimit.size);
      const view = new DataView(bytes.buffer);
      view.setBigUint64(rlimit.rlim_cur, soft, true);
      view.setBigUint64(rlimit.rlim_max, hard, true);
      return call("setrlimit", num(resource, type), shown({ bytes }, `{${soft}, ${hard}}`));
    }),
  };
}

/** Device nodes config.json lists (linux.devices), made with mknod (needs CAP_MKNOD: not in a user namespace). */
export function makeDevices(
  devices: readonly { path: string; type: string; major: number; minor: number; fileMode?: number }[],
  fd: RootFd,
  folders: readonly string[] = [],
): Step {
  const kind = { c: S_IFCHR, u: S_IFCHR, b: S_IFBLK, p: S_IFIFO } as Record<string, number>;
  return {
    name: "make-devices",
    why: "the device nodes config.json asks for in the container's /dev",
    parent: [],
    child: [
      ...folders.flatMap((dir) => mkdirInRoot(fd, dir, 0o755)),
      ...devices.flatMap((device) => {
        // makedev: glibc's encoding of major and minor into dev_t.
        const dev = (BigInt(device.major & 0xfff) << 8n) | BigInt(device.minor & 0xff) |
          (BigInt(device.minor & ~0xff) << 12n) | (BigInt(device.major & ~0xfff) << 32n);
        const mode = kind[device.type]! | (device.fileMode ?? 0o666);
        return mknodInRoot(fd, device.path, { value: mode, show: `0${mode.toString(8)}` }, dev);
      }),
    ],
  };
}

/**
 * process.terminal with --console-socket: a pty from the container's own
 * devpts, its master sent over the socket (SCM_RIGHTS, as runc does) to the
 * engine, its peer the container's stdio and controlling terminal. The fd
 * numbers are known in advance: the child opens the lowest free ones.
 */
export function consolePty(socketFd: number, firstFree: number): Step {
  const master = firstFree, peer = firstFree + 1;
  const { msghdr, iovec, cmsghdr } = LAYOUT;
  const name = new TextEncoder().encode("/dev/ptmx");
  const iov = new Uint8Array(iovec.size);
  new DataView(iov.buffer).setBigUint64(iovec.iov_len, BigInt(name.length), true);
  // CMSG_SPACE(sizeof(int)): the header, the fd, padded to 8 bytes.
  const control = new Uint8Array(cmsghdr.size + 8);
  const c = new DataView(control.buffer);
  c.setBigUint64(cmsghdr.cmsg_len, BigInt(cmsghdr.size + 4), true);
  c.setInt32(cmsghdr.cmsg_level, SOL_SOCKET, true);
  c.setInt32(cmsghdr.cmsg_type, SCM_RIGHTS, true);
  c.setInt32(cmsghdr.size, master, true);
  const header = new Uint8Array(msghdr.size);
  const h = new DataView(header.buffer);
  h.setBigUint64(msghdr.msg_iovlen, 1n, true);
  h.setBigUint64(msghdr.msg_controllen, BigInt(control.length), true);
  const message = {
    struct: header,
    pointers: [
      { offset: msghdr.msg_iov, to: { struct: iov, pointers: [{ offset: iovec.iov_base, to: { bytes: name } }] } },
      { offset: msghdr.msg_control, to: { bytes: control } },
    ],
  };
  const zero = new Uint8Array(4);
  return {
    name: "console-pty",
    why: "a pty from the container's devpts: the master goes to the engine's console socket, the peer becomes stdio",
    parent: [],
    child: [
      call("open", "/dev/ptmx", flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["RDWR", "NOCTTY", "CLOEXEC"])),
      call("ioctl", num(master, `${master} /* master */`), num(TIOCSPTLCK, "TIOCSPTLCK"), shown({ bytes: zero }, "&0")),
      call("ioctl", master, num(TIOCGPTPEER, "TIOCGPTPEER"), flags(O, "O_", ["RDWR", "NOCTTY"])),
      call(
        "sendmsg",
        num(socketFd, `${socketFd} /* console socket */`),
        shown(message, `{"/dev/ptmx", SCM_RIGHTS {${master}}}`),
        0,
      ),
      call("close", master),
      call("close", socketFd),
      call("setsid"),
      call("ioctl", num(peer, `${peer} /* peer */`), num(TIOCSCTTY, "TIOCSCTTY"), 0),
      ...[0, 1, 2].map((fd) => call("dup3", peer, fd, 0)),
      call("close", peer),
    ],
  };
}

/**
 * --preserve-fds N: the caller's descriptors 3…3+N-1 reach the command, as
 * runc passes them (sockets for socket activation); close-on-exec is
 * cleared on each, since the caller may have set it.
 */
export function preserveFds(count: number): Step {
  return {
    name: "preserve-fds",
    why: `--preserve-fds ${count}: descriptors 3 to ${2 + count} stay open for the command`,
    parent: [],
    child: Array.from({ length: count }, (_, i) => call("fcntl", 3 + i, num(F_SETFD, "F_SETFD"), 0)),
  };
}

/**
 * In a new user namespace, the process keeps the host ids it had (gcr's, as
 * root: 0), which config.json's maps may not include (`0 100000 65536`):
 * then it is nobody inside, and the kernel refuses to let it create files
 * (EOVERFLOW). Taking uid and gid 0 of the namespace, once the maps are
 * written, makes it the container's root, as runc does. Raw, as set-user's.
 */
export function becomeRoot(): Step {
  const zeros = [num(0), num(0), num(0)];
  return {
    name: "become-root",
    why: "root of the new user namespace, whatever host ids the maps give it",
    parent: [],
    child: [rawSyscall("setresgid", SYS.setresgid, ...zeros), rawSyscall("setresuid", SYS.setresuid, ...zeros)],
  };
}

/** root.readonly: the container's / read-only, last, once nothing more is mounted on it. */
export function readonlyRoot(): Step {
  return {
    name: "readonly-root",
    why: "config.json's root.readonly: / becomes read-only once every mount is in place",
    parent: [],
    child: [call("mount", NULL, "/", NULL, flags(MS, "MS_", ["REMOUNT", "BIND", "RDONLY"]), NULL)],
  };
}

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

/** rootfsPropagation: the propagation of the container's / after the pivot. */
export function rootPropagation(propagation: number): Step {
  return {
    name: "root-propagation",
    why: "config.json's rootfsPropagation for the container's /",
    parent: [],
    child: [call("mount", NULL, "/", NULL, num(propagation, showMountFlags(propagation)), NULL)],
  };
}
