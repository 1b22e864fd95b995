/**
 * The one place for Linux/glibc constants and struct layouts that gcr relies
 * on. Values are for x86_64 with glibc >= 2.36; `assertSupportedPlatform`
 * refuses anything else, and `tests/ffi/constants_test.ts` checks every layout here
 * against the C headers with a compiler.
 *
 * @module
 */

/** Flags for clone(2) (linux/sched.h): the namespaces, and how the child shares gcr's process. */
export const CLONE = {
  /** The child runs in the caller's memory map until it execs (see ffi/thread_area.ts). */
  VM: 0x00000100,
  /** The new process's parent is the caller's parent (a forked exec process is gcr's child). */
  PARENT: 0x00008000,
  /** The child's thread pointer (%fs) is clone's `tls` argument: a thread area of its own. */
  SETTLS: 0x00080000,
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

/** mount(2) flags (sys/mount.h). */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  SILENT: 0x8000,
  POSIXACL: 0x10000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  I_VERSION: 0x800000,
  STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

/** setrlimit(2) resources (asm-generic/resource.h, which x86_64 uses unchanged). */
export const RLIMIT = {
  CPU: 0,
  FSIZE: 1,
  DATA: 2,
  STACK: 3,
  CORE: 4,
  RSS: 5,
  NPROC: 6,
  NOFILE: 7,
  MEMLOCK: 8,
  AS: 9,
  LOCKS: 10,
  SIGPENDING: 11,
  MSGQUEUE: 12,
  NICE: 13,
  RTPRIO: 14,
  RTTIME: 15,
} as const;

/** mount_setattr(2) attributes (linux/mount.h). */
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  /** The atime field (RELATIME is 0 in it): set whole with attr_clr's ATIME bits. */
  NOATIME: 0x10,
  STRICTATIME: 0x20,
  NODIRATIME: 0x80,
} as const;
/** mount_attr.attr_clr's mask for the atime field, which is one value, not bits. */
export const MOUNT_ATTR__ATIME = 0x70;

export const MNT_DETACH = 0x2;
export const AT_FDCWD = -100;
export const AT_RECURSIVE = 0x8000;
export const CLOSE_RANGE_CLOEXEC = 0x4;
export const O_CLOEXEC = 0o2000000;
export const F_DUPFD_CLOEXEC = 1030;
export const F_GETFD = 1;
/** poll(2): there is data to read (or, for a FIFO, every writer has gone: POLLHUP, always reported). */
export const POLLIN = 1;
export const F_SETFD = 2;
export const PR_SET_PDEATHSIG = 1;
/** prctl(2): whether the process may be ptrace'd and its /proc files opened by others of its uid (linux/prctl.h). */
export const PR_GET_DUMPABLE = 3;
export const PR_SET_DUMPABLE = 4;
export const SIG_SETMASK = 2;
export const SIG_BLOCK = 0;
export const SIG_DFL = 0n;
export const WNOHANG = 1;
export const F_OK = 0;
export const LOCK_EX = 2;
export const S_IFREG = 0o100000;

/** errno values (asm-generic/errno-base.h, errno.h), for the checks gcr makes on them. */
const ERRNO_VALUES = {
  ENXIO: 6,
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  ENOEXEC: 8,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ELOOP: 40,
  EOPNOTSUPP: 95,
};
/** Typed as plain numbers, so that `[ENOENT, ENOTDIR].includes(errno)` type-checks. */
export const ERRNO: Readonly<typeof ERRNO_VALUES> = Object.freeze(ERRNO_VALUES);

/** Signal numbers (x86_64): all of the standard ones, for `gcr kill` by name. */
export const SIGNALS = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
} as const;

/**
 * Syscall numbers (x86_64) for calls the child must make raw. glibc's
 * setgroups/setuid/setgid wrappers broadcast the change to every thread
 * (__nptl_setxid) and wait for them on a futex; the cloned child inherits
 * the parent's thread list in memory but has only one thread, so the
 * wrapper can wait forever (seen here: a hang in setxid_mark_thread).
 */
export const SYS = {
  // The parent's plain calls, made through one binding of syscall() (ffi/libc.ts, THROUGH_SYSCALL).
  read: 0,
  write: 1,
  close: 3,
  poll: 7,
  mmap: 9,
  munmap: 11,
  access: 21,
  kill: 62,
  fcntl: 72,
  prctl: 157,
  openat: 257,
  mkdirat: 258,
  mknodat: 259,
  unlinkat: 263,
  pipe2: 293,
  memfd_create: 319,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  capset: 126,
  unshare: 272,
  setns: 308,
  /** glibc 2.36 has no openat2 wrapper. */
  openat2: 437,
  /** The thread pointer's value (ARCH_GET_FS); glibc 2.36 declares no wrapper. */
  arch_prctl: 158,
  getrandom: 318,
  faccessat2: 439,
} as const;

/** Network interface ioctls and flags (linux/sockios.h, net/if.h). */
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const IFF_UP = 0x1;
export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const TIOCSPGRP = 0x5410;
/** Terminal ioctls for a container's own pty (asm-generic/ioctls.h): unlock, open the peer, make controlling. */
export const TIOCSPTLCK = 0x40045431;
export const TIOCGPTPEER = 0x5441;
export const TIOCSCTTY = 0x540e;
/** SCM_RIGHTS control messages (sys/socket.h): how a console socket receives the pty's master. */
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;

/**
 * Struct layouts (byte offsets and sizes), checked by tests/ffi/constants_test.ts
 * against `offsetof`/`sizeof` from the system headers.
 */
export const LAYOUT = {
  ucontext: {
    size: 968,
    uc_link: 8,
    uc_stack_ss_sp: 16,
    uc_stack_ss_flags: 24,
    uc_stack_ss_size: 32,
    uc_sigmask: 296,
    /** uc_mcontext.gregs[REG_*]: what makecontext sets and setcontext loads. */
    gregs_r8: 40,
    gregs_r9: 48,
    gregs_rdi: 104,
    gregs_rsi: 112,
    gregs_rbx: 128,
    gregs_rdx: 136,
    gregs_rcx: 152,
    gregs_rsp: 160,
    gregs_rip: 168,
    /** uc_mcontext.fpregs: points at the context's own __fpregs_mem. */
    fpregs: 224,
    fpregs_mem: 424,
  },
  /** struct mount_attr: attr_set, attr_clr, propagation, userns_fd (u64 each). */
  mount_attr: { size: 32, attr_set: 0, attr_clr: 8, propagation: 16 },
  /** struct ifreq: name[16] then a union whose ifr_flags is a short. */
  ifreq: { size: 40, ifr_name: 0, ifr_flags: 16 },
  /** struct rlimit: rlim_cur, rlim_max (rlim_t, 64-bit). */
  rlimit: { size: 16, rlim_cur: 0, rlim_max: 8 },
  /** struct pollfd (poll.h): the descriptor, the events asked for, those seen. */
  pollfd: { size: 8, fd: 0, events: 4, revents: 6 },
  /** struct msghdr, struct iovec and struct cmsghdr (sys/socket.h): sendmsg with one fd in SCM_RIGHTS. */
  msghdr: { size: 56, msg_iov: 16, msg_iovlen: 24, msg_control: 32, msg_controllen: 40 },
  iovec: { size: 16, iov_base: 0, iov_len: 8 },
  cmsghdr: { size: 16, cmsg_len: 0, cmsg_level: 8, cmsg_type: 12 },
  /** struct sockaddr_un: sa_family_t, then sun_path[108]. */
  sockaddr_un: { size: 110, sun_path: 2 },
  /** sigset_t as glibc defines it: 1024 bits. */
  sigset: { size: 128 },
  /** struct __user_cap_header_struct (linux/capability.h): u32 version, int pid. */
  cap_header: { size: 8, version: 0, pid: 4 },
  /** struct __user_cap_data_struct: three u32; capset takes two of them (caps 0-31, 32-63). */
  cap_data: { size: 12, effective: 0, permitted: 4, inheritable: 8 },
  /** struct sock_filter (linux/filter.h): one classic BPF instruction. */
  sock_filter: { size: 8 },
  /** struct sock_fprog: unsigned short len, then (padded) struct sock_filter *filter. */
  sock_fprog: { size: 16, len: 0, filter: 8 },
  /**
   * Netlink structs (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h):
   * every message is a nlmsghdr, a fixed family header (ifinfomsg, ifaddrmsg
   * or rtmsg), then 4-byte aligned rtattr TLVs.
   */
  nlmsghdr: { size: 16, nlmsg_len: 0, nlmsg_type: 4, nlmsg_flags: 6, nlmsg_seq: 8, nlmsg_pid: 12 },
  nlmsgerr: { size: 20, error: 0, msg: 4 },
  sockaddr_nl: { size: 12, nl_family: 0, nl_pid: 4, nl_groups: 8 },
  rtattr: { size: 4, rta_len: 0, rta_type: 2 },
  ifinfomsg: { size: 16, ifi_family: 0, ifi_type: 2, ifi_index: 4, ifi_flags: 8, ifi_change: 12 },
  ifaddrmsg: { size: 8, ifa_family: 0, ifa_prefixlen: 1, ifa_flags: 2, ifa_scope: 3, ifa_index: 4 },
  rtmsg: {
    size: 12,
    rtm_family: 0,
    rtm_dst_len: 1,
    rtm_src_len: 2,
    rtm_tos: 3,
    rtm_table: 4,
    rtm_protocol: 5,
    rtm_scope: 6,
    rtm_type: 7,
    rtm_flags: 8,
  },
} as const;

/** The least stack each ucontext of the child chain has below it (they share one region: chain.ts stackTop). */
export const CONTEXT_STACK_SIZE = 32 * 1024;
/** Stack for the cloned child itself (it only runs setcontext). */
export const CLONE_STACK_SIZE = 64 * 1024;

/** arch_prctl(2) code that reads the calling thread's %fs base (asm/prctl.h). */
export const ARCH_GET_FS = 0x1003;

/**
 * glibc's thread control block on x86_64, which %fs points at: its first
 * words (tcbhead_t) are the block's own address (`tcb`, the ABI's rule) and
 * `self` (THREAD_SELF, how libc finds the thread's struct pthread, which
 * starts there); `size` is sizeof(struct pthread). No public header has
 * them: tests/ffi/thread_area_test.ts checks them against a live thread and
 * libc's own record of the size (_thread_db_sizeof_pthread, for debuggers).
 */
export const THREAD_CONTROL_BLOCK = { tcb: 0, self: 16, size: 2368 } as const;

/**
 * Throws unless this is the platform whose layouts are recorded above. aarch64
 * has a different ucontext_t and different ioctl/syscall numbers: running
 * with the wrong ones would corrupt memory in the child, so refuse instead.
 */
export function assertSupportedPlatform(): void {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new Error(
      `gcr supports linux/x86_64 only (this is ${Deno.build.os}/${Deno.build.arch}): struct layouts for other platforms are not checked`,
    );
  }
}

/** openat2(2)'s `struct open_how` resolve flags (linux/openat2.h). */
export const RESOLVE = {
  NO_XDEV: 0x01,
  NO_MAGICLINKS: 0x02,
  NO_SYMLINKS: 0x04,
  BENEATH: 0x08,
  IN_ROOT: 0x10,
} as const;

/** open(2) flags beyond O_CLOEXEC (asm-generic/fcntl.h, x86_64). */
export const O = {
  RDONLY: 0,
  WRONLY: 0o1,
  RDWR: 0o2,
  CREAT: 0o100,
  APPEND: 0o2000,
  NOCTTY: 0o400,
  NONBLOCK: 0o4000,
  EXCL: 0o200,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  PATH: 0o10000000,
} as const;

/** *at() flags (linux/fcntl.h) and renameat2(2) flags (linux/fs.h). */
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const RENAME_EXCHANGE = 0x2;

/** File type bits of st_mode (sys/stat.h); S_IFREG is above. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFLNK = 0o120000;

/** d_type values of struct linux_dirent64 (dirent.h). */
export const DT_UNKNOWN = 0;
export const DT_DIR = 4;

/**
 * Layouts for the layer applier, checked by tests/ffi/constants_test.ts:
 * `struct open_how` (three u64), `struct timespec` (two 64-bit fields) and
 * the fixed head of `struct linux_dirent64` before its d_name.
 */
export const FS_LAYOUT = {
  open_how: { size: 24, flags: 0, mode: 8, resolve: 16 },
  timespec: { size: 16, tv_sec: 0, tv_nsec: 8 },
  dirent64: { d_ino: 0, d_off: 8, d_reclen: 16, d_type: 18, d_name: 19 },
} as const;

/** prctl(2) options and arguments for hardening (linux/prctl.h). */
export const PR = {
  SET_KEEPCAPS: 8,
  SET_SECCOMP: 22,
  CAPBSET_DROP: 24,
  SET_NO_NEW_PRIVS: 38,
  CAP_AMBIENT: 47,
  CAP_AMBIENT_RAISE: 2,
  CAP_AMBIENT_CLEAR_ALL: 4,
} as const;

/** capset(2) header version for 64-bit capability sets (linux/capability.h). */
export const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;
/** The highest capability number this table knows (linux/capability.h); the kernel's is /proc/sys/kernel/cap_last_cap. */
export const CAP_LAST_CAP = 40;
/** seccomp(2) mode for prctl(PR_SET_SECCOMP, …) (linux/seccomp.h). */
export const SECCOMP_MODE_FILTER = 2;
/** memfd_create(2) flags (linux/memfd.h): libseccomp exports its BPF into a memfd; the exec trampoline lives in one. */
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;
/** Linux 6.3+: the memfd may be executed even where vm.memfd_noexec defaults it otherwise. */
export const MFD_EXEC = 0x10;
/** mmap(2)'s protections and flags (sys/mman.h). */
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
/** fcntl(2) file seals (linux/fcntl.h); F_SEAL_EXEC is Linux 6.3+. */
export const F_ADD_SEALS = 1033;
export const F_SEAL = { SEAL: 0x1, SHRINK: 0x2, GROW: 0x4, WRITE: 0x8, EXEC: 0x20 } as const;
/** open_tree(2) and move_mount(2) flags (linux/mount.h): a bind made as a detached tree, then attached by fd. */
export const OPEN_TREE_CLONE = 0x1;
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const MOVE_MOUNT_T_EMPTY_PATH = 0x40;

/** Sockets for rtnetlink (sys/socket.h, linux/netlink.h). */
export const AF_UNSPEC = 0;
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;
/** setsockopt options: errors carry the kernel's own message; acks do not echo the request. */
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
/** IFNAMSIZ (net/if.h): an interface name is at most 15 bytes plus NUL. */
export const IFNAMSIZ = 16;

/** Netlink message types and header flags (linux/netlink.h). */
export const NLMSG = { ERROR: 2, DONE: 3 } as const;
export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
  EXCL: 0x200,
  CREATE: 0x400,
} as const;
/** Extended-ack attribute with the kernel's error text (linux/netlink.h, an enum). */
export const NLMSGERR_ATTR_MSG = 1;

/** rtnetlink message types (linux/rtnetlink.h). */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  NEWROUTE: 24,
} as const;
/** Link attributes (linux/if_link.h, enums). */
export const IFLA = { IFNAME: 3, MASTER: 10, LINKINFO: 18, NET_NS_PID: 19 } as const;
export const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
/** The peer of a veth pair, inside IFLA_INFO_DATA (linux/veth.h, an enum). */
export const VETH_INFO_PEER = 1;
/** Address attributes (linux/if_addr.h, an enum). */
export const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
/** Route attributes and rtmsg values (linux/rtnetlink.h; all enums but RTPROT_BOOT). */
export const RTA = { GATEWAY: 5 } as const;
export const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RTN_UNICAST = 1;
