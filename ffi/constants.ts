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
