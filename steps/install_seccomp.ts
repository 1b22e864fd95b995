import { LAYOUT, PR, SECCOMP_MODE_FILTER } from "../ffi/constants.ts";
import { call, num, shown, type Step } from "./step.ts";

/** The kernel's limit on a classic BPF program (BPF_MAXINSNS, linux/bpf_common.h). */
const BPF_MAXINSNS = 4096;

/**
 * Installs the seccomp filter gcr compiled (security/seccomp/compile.ts) as a BPF
 * program: `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)` with
 * `struct sock_fprog {unsigned short len; struct sock_filter *filter}`.
 * Both the struct and the instructions it points at are malloc'd by the
 * chain builder (a `struct` argument), as everything the child reads must be.
 *
 * The last step before exec: from here on the filter judges every call the
 * child makes, the chain's own included (write and read on its pipes,
 * chdir, execve), and it needs no_new_privs first, since the container no
 * longer has CAP_SYS_ADMIN.
 */
export function installSeccomp(filter: Uint8Array): Step {
  const { sock_filter, sock_fprog } = LAYOUT;
  const length = filter.length / sock_filter.size;
  if (!Number.isInteger(length) || length === 0 || length > BPF_MAXINSNS) {
    throw new Error(`Invalid seccomp program: ${filter.length} bytes (1-${BPF_MAXINSNS} instructions of 8 bytes)`);
  }
  const fprog = new Uint8Array(sock_fprog.size);
  new DataView(fprog.buffer).setUint16(sock_fprog.len, length, true);
  return {
    name: "install-seccomp",
    why: "the kernel refuses the syscalls the profile blocks (keyctl, mount, unshare of a user namespace, …); " +
      "last before exec, after no-new-privs",
    parent: [],
    child: [
      call(
        "prctl",
        num(PR.SET_SECCOMP, "PR_SET_SECCOMP"),
        num(SECCOMP_MODE_FILTER, "SECCOMP_MODE_FILTER"),
        shown(
          { struct: fprog, pointers: [{ offset: sock_fprog.filter, to: { bytes: filter } }] },
          `&{len=${length}, filter=<${length} BPF instructions>}`,
        ),
        0,
        0,
      ),
    ],
  };
}
