/**
 * libc through Deno.dlopen: the one symbol table, loaded once.
 *
 * Two kinds of symbols live here. Those the parent calls directly (clone,
 * pipe2, read, waitpid, …) and those only the child calls, from inside the
 * ucontext chain (mount, pivot_root, execveat, …): the latter are never called
 * from JavaScript, only looked up by address (`childFunctions`), so they are
 * listed in `CHILD_FUNCTIONS` instead of the table.
 *
 * @module
 */
import { SYS } from "./constants.ts";

const symbols = {
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset):
  // the address as a signed word, so that MAP_FAILED is -1 (made through syscall())
  mmap: { parameters: ["usize", "usize", "i32", "i32", "i32", "i64"], result: "isize" },
  // int munmap(void *addr, size_t length)
  munmap: { parameters: ["usize", "usize"], result: "i32" },
  // int *__errno_location(void)
  __errno_location: { parameters: [], result: "pointer" },
  // const char *strerrorname_np(int errnum)
  strerrorname_np: { parameters: ["i32"], result: "pointer" },
  // const char *strerrordesc_np(int errnum)
  strerrordesc_np: { parameters: ["i32"], result: "pointer" },
  // int getcontext(ucontext_t *ucp)
  getcontext: { parameters: ["pointer"], result: "i32" },
  // void makecontext(ucontext_t *ucp, void (*func)(), int argc, ...): variadic;
  // on x86_64 glibc reads each variadic argument as a 64-bit register value.
  // Addresses as numbers (usize/isize), not pointers or BigInts: Deno's fast
  // call path, about 10x faster for the ~360 calls of a chain.
  makecontext: {
    parameters: ["usize", "usize", "i32", "isize", "isize", "isize", "isize", "isize", "isize"],
    result: "void",
  },
  // int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...): the
  // trailing pid_t *parent_tid, void *tls, pid_t *child_tid: only tls is passed (CLONE_SETTLS).
  clone: {
    parameters: ["pointer", "pointer", "i32", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  // int pipe2(int pipefd[2], int flags)
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // int fcntl(int fd, int cmd, ...): variadic; one int argument here
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count)
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count)
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** write(2) on a thread of Deno's: a promise, for a write the kernel may keep waiting (primeMigration). */
  write_later: { name: "write", parameters: ["i32", "buffer", "usize"], result: "isize", nonblocking: true },
  // int close(int fd)
  close: { parameters: ["i32"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout)
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // int kill(pid_t pid, int sig)
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // pid_t waitpid(pid_t pid, int *wstatus, int options): blocking, so it runs
  // off the main thread and the event loop keeps forwarding signals.
  waitpid: { parameters: ["i32", "pointer", "i32"], result: "i32", nonblocking: true },
  // pid_t waitpid(...) with WNOHANG, from the main thread
  waitpid_now: { name: "waitpid", parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int pthread_sigmask(int how, const sigset_t *set, sigset_t *oldset)
  pthread_sigmask: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // pid_t tcgetpgrp(int fd)
  tcgetpgrp: { parameters: ["i32"], result: "i32" },
  // int tcsetpgrp(int fd, pid_t pgrp)
  tcsetpgrp: { parameters: ["i32", "i32"], result: "i32" },
  // pid_t getpgrp(void)
  getpgrp: { parameters: [], result: "i32" },
  // int openat2(int dirfd, const char *path, struct open_how *how, size_t size):
  // glibc 2.36 has no wrapper, so it is only ever made through syscall() (THROUGH_SYSCALL).
  openat2: { parameters: ["i32", "buffer", "buffer", "usize"], result: "i32" },
  // int faccessat2(int dirfd, const char *path, int mode, int flags): Linux 5.8+; glibc's faccessat
  // emulates AT_SYMLINK_NOFOLLOW where the kernel lacks it, so only ever made through syscall()
  faccessat2: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // ssize_t getrandom(void *buf, size_t buflen, unsigned int flags)
  getrandom: { parameters: ["buffer", "usize", "u32"], result: "isize" },
  // int arch_prctl(int code, unsigned long *addr): only ever made through syscall() (THROUGH_SYSCALL)
  arch_prctl: { parameters: ["i32", "buffer"], result: "i32" },
  // int openat(int dirfd, const char *pathname, int flags, ...): variadic; mode_t mode
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  // int mkdirat(int dirfd, const char *pathname, mode_t mode)
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int mknodat(int dirfd, const char *pathname, mode_t mode, dev_t dev)
  mknodat: { parameters: ["i32", "buffer", "u32", "u64"], result: "i32" },
  // int umount2(const char *target, int flags): gcr delete detaches a container's mounts in the host's namespace
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  // int symlinkat(const char *target, int newdirfd, const char *linkpath)
  symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  // int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  // int unlinkat(int dirfd, const char *pathname, int flags)
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
  renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
  // int fchown(int fd, uid_t owner, gid_t group)
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  // int fchownat(int dirfd, const char *pathname, uid_t owner, gid_t group, int flags)
  fchownat: { parameters: ["i32", "buffer", "u32", "u32", "i32"], result: "i32" },
  // int fchmod(int fd, mode_t mode)
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // int fchmodat(int dirfd, const char *pathname, mode_t mode, int flags); with
  // AT_SYMLINK_NOFOLLOW glibc opens O_PATH|O_NOFOLLOW, refuses a symlink
  // (EOPNOTSUPP) and chmods through /proc/self/fd
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  // int futimens(int fd, const struct timespec times[2])
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  // int utimensat(int dirfd, const char *pathname, const struct timespec times[2], int flags)
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  // int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)
  fsetxattr: { parameters: ["i32", "buffer", "buffer", "usize", "i32"], result: "i32" },
  // int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  // int access(const char *pathname, int mode)
  access: { parameters: ["buffer", "i32"], result: "i32" },
  // int flock(int fd, int operation)
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // ssize_t getdents64(int fd, void *dirp, size_t count)
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int memfd_create(const char *name, unsigned int flags): seccomp's BPF is exported into one
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  // environ (char **): a variable; Deno gives its address
  environ: { type: "pointer" },
  // int socket(int domain, int type, int protocol): rtnetlink sockets are made
  // on the JS thread, so a setns() just before decides their namespace
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen)
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int setsockopt(int sockfd, int level, int optname, const void *optval, socklen_t optlen)
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  // ssize_t sendto(int sockfd, const void *buf, size_t len, int flags, const struct sockaddr *dest_addr, socklen_t addrlen)
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  // ssize_t recvfrom(int sockfd, void *buf, size_t len, int flags, struct sockaddr *src_addr, socklen_t *addrlen)
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "pointer", "pointer"], result: "isize" },
  // int dup2(int oldfd, int newfd): a detached container's monitor points its stdout and stderr at the log
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  // pid_t setsid(void): the monitor leaves the terminal's session, so closing the terminal does not end it
  setsid: { parameters: [], result: "i32" },
  // int connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen): the OCI console socket
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int prctl(int option, unsigned long arg2, …): variadic; four unsigned long arguments here
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  // int setns(int fd, int nstype): from the JS thread, moves only that thread
  setns: { parameters: ["i32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * Functions the child runs inside the ucontext chain, with their C
 * signatures. They are resolved to addresses (childFunctions); none of them is
 * ever called on the parent's side.
 */
export const CHILD_FUNCTIONS = {
  memcpy: "void *memcpy(void *dest, const void *src, size_t n)",
  write: "ssize_t write(int fd, const void *buf, size_t count)",
  read: "ssize_t read(int fd, void *buf, size_t count)",
  close: "int close(int fd)",
  _exit: "void _exit(int status)",
  prctl: "int prctl(int option, unsigned long arg2, …)",
  syscall: "long syscall(long number, …)",
  sethostname: "int sethostname(const char *name, size_t len)",
  mount: "int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)",
  mount_setattr:
    "int mount_setattr(int dirfd, const char *path, unsigned int flags, struct mount_attr *attr, size_t size)",
  umount2: "int umount2(const char *target, int flags)",
  mknod: "int mknod(const char *path, mode_t mode, dev_t dev)",
  mkdir: "int mkdir(const char *path, mode_t mode)",
  symlink: "int symlink(const char *target, const char *linkpath)",
  chdir: "int chdir(const char *path)",
  open: "int open(const char *path, int flags, …)",
  chroot: "int chroot(const char *path)",
  clone: "int clone(int (*fn)(void *), void *stack, int flags, void *arg, …)",
  fcntl: "int fcntl(int fd, int cmd, …)",
  umask: "mode_t umask(mode_t mask)",
  setsid: "pid_t setsid(void)",
  sendmsg: "ssize_t sendmsg(int sockfd, const struct msghdr *msg, int flags)",
  setdomainname: "int setdomainname(const char *name, size_t len)",
  pivot_root: "int pivot_root(const char *new_root, const char *put_old)",
  close_range: "int close_range(unsigned int first, unsigned int last, int flags)",
  dup3: "int dup3(int oldfd, int newfd, int flags)",
  socket: "int socket(int domain, int type, int protocol)",
  ioctl: "int ioctl(int fd, unsigned long request, …)",
  setpgid: "int setpgid(pid_t pid, pid_t pgid)",
  signal: "sighandler_t signal(int signum, sighandler_t handler)",
  setrlimit: "int setrlimit(int resource, const struct rlimit *rlim)",
  sigprocmask: "int sigprocmask(int how, const sigset_t *set, sigset_t *oldset)",
  execveat: "int execveat(int dirfd, const char *pathname, char *const argv[], char *const envp[], int flags)",
  mkdirat: "int mkdirat(int dirfd, const char *path, mode_t mode)",
  mknodat: "int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)",
  fchownat: "int fchownat(int dirfd, const char *path, uid_t owner, gid_t group, int flags)",
  symlinkat: "int symlinkat(const char *target, int newdirfd, const char *linkpath)",
  open_tree: "int open_tree(int dirfd, const char *path, unsigned int flags)",
  move_mount:
    "int move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags)",
  setcontext: "int setcontext(const ucontext_t *ucp)",
} as const;

export type ChildFunction = keyof typeof CHILD_FUNCTIONS;

type Symbols = Deno.DynamicLibrary<typeof symbols>["symbols"];

/**
 * Each symbol is bound on first use: Deno compiles a call trampoline per
 * symbol when it binds it (0.1-0.3 ms each, more for more parameters,
 * measured here), and a run uses only part of the table (error, terminal
 * and wait paths are rare). The symbols of STARTS_A_CONTAINER are bound
 * together, with the first of them that is used.
 */
const bound = {} as Symbols;
for (const name of Object.keys(symbols) as (keyof typeof symbols)[]) {
  Object.defineProperty(bound, name, {
    configurable: true,
    enumerable: true,
    get() {
      if (Object.hasOwn(THROUGH_SYSCALL, name)) {
        const value = throughSyscall(THROUGH_SYSCALL[name as keyof typeof THROUGH_SYSCALL]);
        Object.defineProperty(bound, name, { value, enumerable: true });
        return value;
      }
      const names: readonly (keyof typeof symbols)[] = (STARTS_A_CONTAINER as readonly string[]).includes(name)
        ? STARTS_A_CONTAINER
        : [name];
      const library = Deno.dlopen("libc.so.6", Object.fromEntries(names.map((n) => [n, symbols[n]])) as typeof symbols);
      for (const n of names) Object.defineProperty(bound, n, { value: library.symbols[n], enumerable: true });
      return library.symbols[name];
    },
  });
}

/**
 * What every container start calls, and little else does: the chain's
 * layout (getcontext, makecontext), the clone with signals blocked
 * around it, the wait. One Deno.dlopen for all of them: each dlopen costs
 * ~0.12 ms beside ~0.13 ms per symbol (measured here: three symbols in one
 * call 0.5 ms, in three calls 1.0), and `gcr run` made one for each.
 */
const STARTS_A_CONTAINER = [
  "getcontext",
  "makecontext",
  "pthread_sigmask",
  "clone",
  "waitpid",
] as const satisfies readonly (keyof typeof symbols)[];

/**
 * Entries whose libc function is nothing but its system call: they share
 * one binding of syscall(), so a verb pays for one trampoline instead of one
 * for each (gcr run called eight of them, gcr start five). Their table
 * entries above keep the C signatures that callers rely on.
 */
const THROUGH_SYSCALL = {
  read: SYS.read,
  write: SYS.write,
  close: SYS.close,
  poll: SYS.poll,
  access: SYS.access,
  kill: SYS.kill,
  fcntl: SYS.fcntl,
  prctl: SYS.prctl,
  mmap: SYS.mmap,
  munmap: SYS.munmap,
  openat: SYS.openat,
  openat2: SYS.openat2,
  arch_prctl: SYS.arch_prctl,
  getrandom: SYS.getrandom,
  faccessat2: SYS.faccessat2,
  mkdirat: SYS.mkdirat,
  // The kernel's dev_t is 32 bits: makeNodeAt refuses what would not fit, as glibc's mknodat does.
  mknodat: SYS.mknodat,
  unlinkat: SYS.unlinkat,
  pipe2: SYS.pipe2,
  memfd_create: SYS.memfd_create,
} as const satisfies Partial<Record<keyof typeof symbols, number>>;

/** syscall() as bound: i64 parameters take numbers as well as bigints. */
type RawSyscall = (...words: (number | bigint)[]) => number | bigint;
/** Bound with the first entry that uses it, once for all of them. */
let syscallBinding: RawSyscall | undefined;

/**
 * A table entry made of syscall(number, …): glibc's syscall() takes every
 * argument as a register-sized integer and sets errno as the wrapper would,
 * so a buffer travels as its address (Deno.UnsafePointer.of materialises a
 * typed array's bytes off V8's heap, where they do not move).
 */
function throughSyscall(number: number): (...args: unknown[]) => number {
  // The number and six arguments, the most a system call takes (mmap's offset is the sixth).
  syscallBinding ??= Deno.dlopen("libc.so.6", {
    syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  }).symbols.syscall as unknown as RawSyscall;
  const call = syscallBinding;
  return (...args) => {
    const words = args.map((arg): number | bigint => {
      if (typeof arg === "number" || typeof arg === "bigint") return arg;
      if (arg === null || arg === undefined) return 0;
      if (ArrayBuffer.isView(arg)) return Deno.UnsafePointer.value(Deno.UnsafePointer.of(arg));
      throw new TypeError(`a system call's argument must be a number, a bigint or bytes (got ${typeof arg})`);
    });
    while (words.length < 6) words.push(0);
    return Number(call(number, ...words));
  };
}

/** The libc symbols; each is bound on first use. */
export function libc(): Symbols {
  return bound;
}

const addresses = new Map<ChildFunction, Deno.PointerObject>();

/**
 * Addresses of the child functions `names`, each looked up once: those not
 * known yet in one Deno.dlopen of them as statics, whose value Deno gives
 * as the symbol's address (dlsym's answer, without a binding of dlsym and
 * a call of it per function).
 */
export function childFunctions(names: Iterable<ChildFunction>): Map<ChildFunction, Deno.PointerObject> {
  const wanted = [...new Set(names)];
  const missing = wanted.filter((name) => !addresses.has(name));
  if (missing.length) {
    const found = Deno.dlopen(
      "libc.so.6",
      Object.fromEntries(missing.map((name) => [name, { type: "pointer" }])) as Record<string, { type: "pointer" }>,
    ).symbols as Record<string, Deno.PointerValue>;
    for (const name of missing) {
      const address = found[name];
      if (!address) throw new Error(`libc has no symbol ${name}`);
      addresses.set(name, address);
    }
  }
  return new Map(wanted.map((name) => [name, addresses.get(name)!]));
}

type NumberMakecontext = (
  ucp: number,
  func: number,
  argc: number,
  a1: number,
  a2: number,
  a3: number,
  a4: number,
  a5: number,
  a6: number,
) => void;

/**
 * makecontext with number arguments. Deno's types say bigint for 64-bit
 * parameters, but it accepts numbers, which skip BigInt conversion (safe
 * integers only: addresses and register values here are).
 */
export function makecontext(ucp: number, func: number, argc: number, args: readonly number[]): void {
  (libc().makecontext as unknown as NumberMakecontext)(
    ucp,
    func,
    argc,
    args[0] ?? 0,
    args[1] ?? 0,
    args[2] ?? 0,
    args[3] ?? 0,
    args[4] ?? 0,
    args[5] ?? 0,
  );
}

/** Reads a NUL-terminated C string owned by libc. */
export function readCString(pointer: Deno.PointerValue): string {
  return pointer ? Deno.UnsafePointerView.getCString(pointer) : "";
}
