/**
 * The struct layouts and constants gcr hard-codes (ffi/constants.ts), checked
 * against the system's C headers with a compiler: a wrong offset here would
 * corrupt memory in the cloned child.
 */
import { join } from "node:path";
import * as constants from "../../ffi/constants.ts";
import { describe, missingPrograms, named, run } from "../fixtures.ts";
import { assert, assertEquals } from "../helpers.ts";

/** How each LAYOUT entry is computed in C. Every LAYOUT entry must be listed here. */
const LAYOUT_IN_C: Record<string, string> = {
  "ucontext.size": "sizeof(ucontext_t)",
  "ucontext.uc_link": "offsetof(ucontext_t, uc_link)",
  "ucontext.uc_stack_ss_sp": "offsetof(ucontext_t, uc_stack.ss_sp)",
  "ucontext.uc_stack_ss_flags": "offsetof(ucontext_t, uc_stack.ss_flags)",
  "ucontext.uc_stack_ss_size": "offsetof(ucontext_t, uc_stack.ss_size)",
  "ucontext.uc_sigmask": "offsetof(ucontext_t, uc_sigmask)",
  "ucontext.gregs_r8": "offsetof(ucontext_t, uc_mcontext.gregs[REG_R8])",
  "ucontext.gregs_r9": "offsetof(ucontext_t, uc_mcontext.gregs[REG_R9])",
  "ucontext.gregs_rdi": "offsetof(ucontext_t, uc_mcontext.gregs[REG_RDI])",
  "ucontext.gregs_rsi": "offsetof(ucontext_t, uc_mcontext.gregs[REG_RSI])",
  "ucontext.gregs_rbx": "offsetof(ucontext_t, uc_mcontext.gregs[REG_RBX])",
  "ucontext.gregs_rdx": "offsetof(ucontext_t, uc_mcontext.gregs[REG_RDX])",
  "ucontext.gregs_rcx": "offsetof(ucontext_t, uc_mcontext.gregs[REG_RCX])",
  "ucontext.gregs_rsp": "offsetof(ucontext_t, uc_mcontext.gregs[REG_RSP])",
  "ucontext.gregs_rip": "offsetof(ucontext_t, uc_mcontext.gregs[REG_RIP])",
  "ucontext.fpregs": "offsetof(ucontext_t, uc_mcontext.fpregs)",
  "ucontext.fpregs_mem": "offsetof(ucontext_t, __fpregs_mem)",
  "mount_attr.size": "sizeof(struct mount_attr)",
  "mount_attr.attr_set": "offsetof(struct mount_attr, attr_set)",
  "mount_attr.attr_clr": "offsetof(struct mount_attr, attr_clr)",
  "mount_attr.propagation": "offsetof(struct mount_attr, propagation)",
  "ifreq.size": "sizeof(struct ifreq)",
  "ifreq.ifr_name": "offsetof(struct ifreq, ifr_name)",
  "ifreq.ifr_flags": "offsetof(struct ifreq, ifr_flags)",
  "sigset.size": "sizeof(sigset_t)",
  "msghdr.size": "sizeof(struct msghdr)",
  "msghdr.msg_iov": "offsetof(struct msghdr, msg_iov)",
  "msghdr.msg_iovlen": "offsetof(struct msghdr, msg_iovlen)",
  "msghdr.msg_control": "offsetof(struct msghdr, msg_control)",
  "msghdr.msg_controllen": "offsetof(struct msghdr, msg_controllen)",
  "iovec.size": "sizeof(struct iovec)",
  "iovec.iov_base": "offsetof(struct iovec, iov_base)",
  "iovec.iov_len": "offsetof(struct iovec, iov_len)",
  "cmsghdr.size": "sizeof(struct cmsghdr)",
  "cmsghdr.cmsg_len": "offsetof(struct cmsghdr, cmsg_len)",
  "cmsghdr.cmsg_level": "offsetof(struct cmsghdr, cmsg_level)",
  "cmsghdr.cmsg_type": "offsetof(struct cmsghdr, cmsg_type)",
  "sockaddr_un.size": "sizeof(struct sockaddr_un)",
  "sockaddr_un.sun_path": "offsetof(struct sockaddr_un, sun_path)",
  "rlimit.size": "sizeof(struct rlimit)",
  "rlimit.rlim_cur": "offsetof(struct rlimit, rlim_cur)",
  "rlimit.rlim_max": "offsetof(struct rlimit, rlim_max)",
  "pollfd.size": "sizeof(struct pollfd)",
  "pollfd.fd": "offsetof(struct pollfd, fd)",
  "pollfd.events": "offsetof(struct pollfd, events)",
  "pollfd.revents": "offsetof(struct pollfd, revents)",
  "cap_header.size": "sizeof(struct __user_cap_header_struct)",
  "cap_header.version": "offsetof(struct __user_cap_header_struct, version)",
  "cap_header.pid": "offsetof(struct __user_cap_header_struct, pid)",
  "cap_data.size": "sizeof(struct __user_cap_data_struct)",
  "cap_data.effective": "offsetof(struct __user_cap_data_struct, effective)",
  "cap_data.permitted": "offsetof(struct __user_cap_data_struct, permitted)",
  "cap_data.inheritable": "offsetof(struct __user_cap_data_struct, inheritable)",
  "sock_filter.size": "sizeof(struct sock_filter)",
  "sock_fprog.size": "sizeof(struct sock_fprog)",
  "sock_fprog.len": "offsetof(struct sock_fprog, len)",
  "sock_fprog.filter": "offsetof(struct sock_fprog, filter)",
  "nlmsghdr.size": "sizeof(struct nlmsghdr)",
  "nlmsghdr.nlmsg_len": "offsetof(struct nlmsghdr, nlmsg_len)",
  "nlmsghdr.nlmsg_type": "offsetof(struct nlmsghdr, nlmsg_type)",
  "nlmsghdr.nlmsg_flags": "offsetof(struct nlmsghdr, nlmsg_flags)",
  "nlmsghdr.nlmsg_seq": "offsetof(struct nlmsghdr, nlmsg_seq)",
  "nlmsghdr.nlmsg_pid": "offsetof(struct nlmsghdr, nlmsg_pid)",
  "nlmsgerr.size": "sizeof(struct nlmsgerr)",
  "nlmsgerr.error": "offsetof(struct nlmsgerr, error)",
  "nlmsgerr.msg": "offsetof(struct nlmsgerr, msg)",
  "sockaddr_nl.size": "sizeof(struct sockaddr_nl)",
  "sockaddr_nl.nl_family": "offsetof(struct sockaddr_nl, nl_family)",
  "sockaddr_nl.nl_pid": "offsetof(struct sockaddr_nl, nl_pid)",
  "sockaddr_nl.nl_groups": "offsetof(struct sockaddr_nl, nl_groups)",
  "rtattr.size": "sizeof(struct rtattr)",
  "rtattr.rta_len": "offsetof(struct rtattr, rta_len)",
  "rtattr.rta_type": "offsetof(struct rtattr, rta_type)",
  "ifinfomsg.size": "sizeof(struct ifinfomsg)",
  "ifinfomsg.ifi_family": "offsetof(struct ifinfomsg, ifi_family)",
  "ifinfomsg.ifi_type": "offsetof(struct ifinfomsg, ifi_type)",
  "ifinfomsg.ifi_index": "offsetof(struct ifinfomsg, ifi_index)",
  "ifinfomsg.ifi_flags": "offsetof(struct ifinfomsg, ifi_flags)",
  "ifinfomsg.ifi_change": "offsetof(struct ifinfomsg, ifi_change)",
  "ifaddrmsg.size": "sizeof(struct ifaddrmsg)",
  "ifaddrmsg.ifa_family": "offsetof(struct ifaddrmsg, ifa_family)",
  "ifaddrmsg.ifa_prefixlen": "offsetof(struct ifaddrmsg, ifa_prefixlen)",
  "ifaddrmsg.ifa_flags": "offsetof(struct ifaddrmsg, ifa_flags)",
  "ifaddrmsg.ifa_scope": "offsetof(struct ifaddrmsg, ifa_scope)",
  "ifaddrmsg.ifa_index": "offsetof(struct ifaddrmsg, ifa_index)",
  "rtmsg.size": "sizeof(struct rtmsg)",
  "rtmsg.rtm_family": "offsetof(struct rtmsg, rtm_family)",
  "rtmsg.rtm_dst_len": "offsetof(struct rtmsg, rtm_dst_len)",
  "rtmsg.rtm_src_len": "offsetof(struct rtmsg, rtm_src_len)",
  "rtmsg.rtm_tos": "offsetof(struct rtmsg, rtm_tos)",
  "rtmsg.rtm_table": "offsetof(struct rtmsg, rtm_table)",
  "rtmsg.rtm_protocol": "offsetof(struct rtmsg, rtm_protocol)",
  "rtmsg.rtm_scope": "offsetof(struct rtmsg, rtm_scope)",
  "rtmsg.rtm_type": "offsetof(struct rtmsg, rtm_type)",
  "rtmsg.rtm_flags": "offsetof(struct rtmsg, rtm_flags)",
};

/**
 * Constants that C defines as enumerators, not macros (`#ifdef` cannot see
 * them): printed unconditionally, so a missing one fails the compile.
 */
const C_ENUMS = new Set([
  "IFLA_IFNAME",
  "IFLA_MASTER",
  "IFLA_LINKINFO",
  "IFLA_NET_NS_PID",
  "IFLA_INFO_KIND",
  "IFLA_INFO_DATA",
  "VETH_INFO_PEER",
  "IFA_ADDRESS",
  "IFA_LOCAL",
  "RTA_GATEWAY",
  "RT_TABLE_MAIN",
  "RT_SCOPE_UNIVERSE",
  "RTN_UNICAST",
  "NLMSGERR_ATTR_MSG",
]);

/**
 * Exports that are not C macros: gcr's own choices, functions, FS_LAYOUT,
 * which the image code's own layout test checks, and glibc's thread control
 * block, which no public header declares (tests/ffi/thread_area_test.ts).
 */
const NOT_FROM_C = new Set(["CONTEXT_STACK_SIZE", "CLONE_STACK_SIZE", "LAYOUT", "FS_LAYOUT", "THREAD_CONTROL_BLOCK"]);

/**
 * Constants newer than the C headers of some supported systems (Debian 12's
 * are Linux 6.1's): their values are the kernel's uapi ones, given here with
 * where they are defined. Checked like the others where the headers have
 * them; where they do not, the value below must be gcr's.
 */
const NEWER_THAN_HEADERS = new Map<string, bigint>([
  ["MFD_EXEC", 0x10n], // include/uapi/linux/memfd.h, Linux 6.3
  ["F_SEAL_EXEC", 0x20n], // include/uapi/linux/fcntl.h, Linux 6.3
]);

/** Every exported constant as `C macro name → value`: `MS.BIND` → `MS_BIND`, `SIGNALS.SIGKILL` → `SIGKILL`. */
function exportedConstants(): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [name, value] of Object.entries(constants)) {
    if (NOT_FROM_C.has(name) || typeof value === "function") continue;
    if (typeof value === "number" || typeof value === "bigint") {
      out.set(name, BigInt(value));
      continue;
    }
    assert(value && typeof value === "object", `constants.${name}: unexpected export type ${typeof value}`);
    for (const [key, member] of Object.entries(value)) {
      assert(
        typeof member === "number" || typeof member === "bigint",
        `constants.${name}.${key} is not a number: add it to NOT_FROM_C or to this test`,
      );
      out.set(name === "SIGNALS" || name === "ERRNO" ? key : `${name}_${key}`, BigInt(member));
    }
  }
  return out;
}

function layoutEntries(): Map<string, number> {
  const out = new Map<string, number>();
  for (const [struct, fields] of Object.entries(constants.LAYOUT)) {
    for (const [field, value] of Object.entries(fields)) out.set(`${struct}.${field}`, value as number);
  }
  return out;
}

const HEADERS = [
  "stdio.h",
  "sys/resource.h",
  "poll.h",
  "errno.h",
  "stddef.h",
  "stdint.h",
  "ucontext.h",
  "sched.h",
  "signal.h",
  "fcntl.h",
  "unistd.h",
  "dirent.h",
  "sys/mount.h",
  "linux/mount.h",
  "linux/openat2.h",
  "sys/syscall.h",
  "sys/prctl.h",
  "sys/wait.h",
  "sys/stat.h",
  "sys/socket.h",
  "sys/un.h",
  "sys/uio.h",
  "sys/ioctl.h",
  "net/if.h",
  "linux/sockios.h",
  "linux/capability.h",
  "linux/filter.h",
  "linux/seccomp.h",
  "sys/mman.h",
  "asm/prctl.h",
  "linux/netlink.h",
  "linux/rtnetlink.h",
  "linux/if_link.h",
  "linux/if_addr.h",
  "linux/veth.h",
];

function program(names: readonly string[], layout: readonly string[]): string {
  const body = [
    ...names.map((name) =>
      C_ENUMS.has(name)
        ? `  printf("const ${name} %lld\\n", (long long)(${name}));`
        : `#ifdef ${name}\n  printf("const ${name} %lld\\n", (long long)(intptr_t)(${name}));\n#else\n  printf("const ${name} undefined\\n");\n#endif`
    ),
    ...layout.map((key) => `  printf("layout ${key} %zu\\n", (size_t)(${LAYOUT_IN_C[key]}));`),
  ];
  return `#define _GNU_SOURCE\n${HEADERS.map((h) => `#include <${h}>`).join("\n")}\n\nint main(void) {\n${
    body.join("\n")
  }\n  return 0;\n}\n`;
}

Deno.test(
  named(
    "struct layouts (ucontext_t, mount_attr, ifreq, sigset_t) and constants match the C headers",
    Deno.build.arch !== "x86_64"
      ? `LAYOUT is recorded for x86_64 only; this is ${Deno.build.arch}`
      : missingPrograms("gcc"),
  ),
  async () => {
    const wanted = exportedConstants();
    const layout = layoutEntries();
    const unmapped = [...layout.keys()].filter((key) => !(key in LAYOUT_IN_C));
    assertEquals(unmapped, [], "LAYOUT entries this test does not know how to compute in C");
    for (
      const name of [
        "CLONE_NEWUSER",
        "MS_BIND",
        "MOUNT_ATTR_RDONLY",
        "MNT_DETACH",
        "AT_FDCWD",
        "AT_RECURSIVE",
        "CLOSE_RANGE_CLOEXEC",
        "O_CLOEXEC",
        "F_DUPFD_CLOEXEC",
        "PR_SET_PDEATHSIG",
        "SIG_SETMASK",
        "SIG_BLOCK",
        "WNOHANG",
        "S_IFREG",
        "SIOCSIFFLAGS",
        "SIOCGIFFLAGS",
        "IFF_UP",
        "AF_INET",
        "SOCK_DGRAM",
        "TIOCSPGRP",
        "SIGKILL",
        "SYS_capset",
        "PR_CAPBSET_DROP",
        "_LINUX_CAPABILITY_VERSION_3",
        "SECCOMP_MODE_FILTER",
        "RTM_NEWLINK",
        "NLM_F_REQUEST",
        "IFLA_LINKINFO",
        "VETH_INFO_PEER",
      ]
    ) assert(wanted.has(name), `${name} is among the constants checked`);

    const dir = Deno.makeTempDirSync({ prefix: "gcr-layout-" });
    try {
      const source = join(dir, "layout.c");
      const binary = join(dir, "layout");
      Deno.writeTextFileSync(source, program([...wanted.keys()], [...layout.keys()]));
      const compiled = await run("gcc", ["-Wall", "-o", binary, source], { timeoutMs: 60_000 });
      assertEquals(compiled.code, 0, "gcc compiles the layout program", describe(compiled));
      const result = await run(binary, []);
      assertEquals(result.code, 0, "the layout program runs", describe(result));

      const fromC = new Map(
        result.stdout.trim().split("\n").map((line) => {
          const [kind, key, value] = line.split(" ");
          return [`${kind} ${key}`, value!];
        }),
      );
      const undefinedInC = [...wanted.keys()].filter((name) =>
        fromC.get(`const ${name}`) === "undefined" && !NEWER_THAN_HEADERS.has(name)
      );
      assertEquals(undefinedInC, [], "constants with no C macro (add them to NOT_FROM_C if that is right)");
      const mismatches: string[] = [];
      for (const [name, value] of wanted) {
        const fromHeaders = fromC.get(`const ${name}`);
        const c = fromHeaders === "undefined" ? NEWER_THAN_HEADERS.get(name)?.toString() : fromHeaders;
        if (c === undefined || BigInt(c) !== value) mismatches.push(`${name}: gcr ${value}, C ${c}`);
      }
      for (const [key, value] of layout) {
        const c = fromC.get(`layout ${key}`);
        if (c === undefined || Number(c) !== value) mismatches.push(`LAYOUT.${key}: gcr ${value}, C ${c}`);
      }
      assertEquals(mismatches, [], "values that differ from the C headers", describe(result));
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
