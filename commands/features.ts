/**
 * `gcr features`: what this runtime supports (runtime-spec features.md).
 *
 * @module
 */

import { CAPABILITIES } from "../ffi/capabilities.ts";
import { OCI_VERSION } from "../output/version.ts";

/** `gcr features`: what this runtime supports (runtime-spec features.md). */
export function featuresCommand(): number {
  console.log(JSON.stringify(
    {
      ociVersionMin: "1.0.0",
      ociVersionMax: OCI_VERSION,
      hooks: [],
      mountOptions: [
        "ro",
        "rw",
        "nosuid",
        "suid",
        "nodev",
        "dev",
        "noexec",
        "exec",
        "sync",
        "async",
        "dirsync",
        "remount",
        "mand",
        "nomand",
        "atime",
        "noatime",
        "diratime",
        "nodiratime",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "bind",
        "rbind",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
      ],
      linux: {
        namespaces: ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
        capabilities: Object.keys(CAPABILITIES).map((name) => name.startsWith("CAP_") ? name : `CAP_${name}`),
        cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
        seccomp: {
          enabled: true,
          actions: [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP",
          ],
          operators: [
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_LE",
            "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NE",
          ],
          archs: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        },
        apparmor: { enabled: false },
        selinux: { enabled: false },
      },
      annotations: {},
    },
    null,
    2,
  ));
  return 0;
}
