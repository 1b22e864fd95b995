/**
 * The one place for Linux/glibc constants and struct layouts that gcr relies
 * on. Values are for x86_64 with glibc >= 2.36; `assertSupportedPlatform`
 * refuses anything else, and `tests/layout_test.ts` checks every layout here
 * against the C headers with a compiler.
 *
 * @module
 */

/** Namespace flags for clone(2) (linux/sched.h). */
export const CLONE = {
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
  REMOUNT: 0x20,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  STRICTATIME: 0x1000000,
} as const;

/** mount_setattr(2) attributes (linux/mount.h). */
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
} as const;

export const MNT_DETACH = 0x2;
export const AT_FDCWD = -100;
export const AT_RECURSIVE = 0x8000;
export const CLOSE_RANGE_CLOEXEC = 0x4;
export const O_CLOEXEC = 0o2000000;
export const F_DUPFD_CLOEXEC = 1030;
export const PR_SET_PDEATHSIG = 1;
export const SIG_SETMASK = 2;
export const SIG_BLOCK = 0;
export const SIG_DFL = 0n;
export const WNOHANG = 1;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const S_IFREG = 0o100000;

/** Signal numbers (x86_64). */
export const SIGNALS = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGPIPE: 13,
  SIGTERM: 15,
  SIGCHLD: 17,
  SIGTTOU: 22,
} as const;

/**
 * Syscall numbers (x86_64) for calls the child must make raw. glibc's
 * setgroups/setuid/setgid wrappers broadcast the change to every thread
 * (__nptl_setxid) and wait for them on a futex; the cloned child inherits
 * the parent's thread list in memory but has only one thread, so the
 * wrapper can wait forever (seen here: a hang in setxid_mark_thread).
 */
export const SYS = { setgroups: 116 } as const;

/** Network interface ioctls and flags (linux/sockios.h, net/if.h). */
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const IFF_UP = 0x1;
export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const TIOCSPGRP = 0x5410;

/**
 * Struct layouts (byte offsets and sizes), checked by tests/layout_test.ts
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
  mount_attr: { size: 32, attr_set: 0, attr_clr: 8 },
  /** struct ifreq: name[16] then a union whose ifr_flags is a short. */
  ifreq: { size: 40, ifr_name: 0, ifr_flags: 16 },
  /** sigset_t as glibc defines it: 1024 bits. */
  sigset: { size: 128 },
} as const;

/** Stack given to each ucontext in the child chain; makecontext writes into it. */
export const CONTEXT_STACK_SIZE = 32 * 1024;
/** Stack for the cloned child itself (it only runs setcontext). */
export const CLONE_STACK_SIZE = 64 * 1024;

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

/** openat2(2): syscall number and `struct open_how` resolve flags (linux/openat2.h). */
export const SYS_openat2 = 437;
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
  CREAT: 0o100,
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
 * Layouts for the layer applier, checked by tests/image/layout_test.ts:
 * `struct open_how` (three u64), `struct timespec` (two 64-bit fields) and
 * the fixed head of `struct linux_dirent64` before its d_name.
 */
export const FS_LAYOUT = {
  open_how: { size: 24, flags: 0, mode: 8, resolve: 16 },
  timespec: { size: 16, tv_sec: 0, tv_nsec: 8 },
  dirent64: { d_ino: 0, d_off: 8, d_reclen: 16, d_type: 18, d_name: 19 },
} as const;
