/**
 * The runtime spec's `linux.seccomp` (profileFromOci): what podman and
 * Docker send compiles, what gcr cannot apply is refused with the field in
 * the message, and a compiled profile is what the kernel enforces in a real
 * container.
 *
 * The containers run through gcr's pipeline in a subprocess (runSteps shares
 * its stdio with the container), from a small script written per test: it
 * is tests/security/run_hardened.ts with the filter taken from an OCI object instead
 * of a profile file.
 */
import { join } from "node:path";
import { resolveCapabilities } from "../../security/capabilities.ts";
import { compileProfile } from "../../security/seccomp/compile.ts";
import { loadProfile } from "../../security/seccomp/docker.ts";
import { profileFromOci } from "../../security/seccomp/oci.ts";
import type { SeccompAction, SeccompProfile } from "../../security/seccomp/profile.ts";
import { BUSYBOX, busyboxRootfs, describe, missingRoot, named, REPO, run, type RunResult } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertThrows } from "../helpers.ts";

const ALLOW = { defaultAction: "SCMP_ACT_ALLOW" };

// ---------------------------------------------------------------------------
// Reading linux.seccomp

Deno.test("profileFromOci: actions with their errno, architectures, argument rules", () => {
  const profile = profileFromOci({
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 38,
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    flags: [],
    listenerPath: "",
    syscalls: [
      { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
      { names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
      { names: ["chmod"], action: "SCMP_ACT_ERRNO" },
      { names: ["ptrace"], action: "SCMP_ACT_TRACE" },
      { names: ["reboot"], action: "SCMP_ACT_KILL_PROCESS" },
      {
        names: ["clone"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 0, value: 2114060288, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
      },
      {
        names: ["personality"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 0, value: "4294967295", op: "SCMP_CMP_EQ" }],
      },
      { names: ["uname"], action: "SCMP_ACT_LOG", errnoRet: null },
    ],
  });
  assertEquals(profile.defaultAction, { action: "SCMP_ACT_ERRNO", ret: 38 }, "defaultErrnoRet");
  assertEquals(profile.architectures, ["x86_64", "x86", "x32"], "libseccomp's names");
  const actions = profile.rules.map((rule) => rule.action);
  assertEquals(
    actions,
    [
      { action: "SCMP_ACT_ALLOW" },
      { action: "SCMP_ACT_ERRNO", ret: 13 },
      { action: "SCMP_ACT_ERRNO", ret: 1 }, // the spec's default: EPERM, not defaultErrnoRet
      { action: "SCMP_ACT_TRACE", ret: 1 },
      { action: "SCMP_ACT_KILL_PROCESS" },
      { action: "SCMP_ACT_ALLOW" },
      { action: "SCMP_ACT_ALLOW" },
      { action: "SCMP_ACT_LOG" },
    ] satisfies SeccompAction[],
  );
  assertEquals(profile.rules[5]!.args, [{ index: 0, op: "SCMP_CMP_MASKED_EQ", value: 2114060288n, valueTwo: 0n }]);
  assertEquals(profile.rules[6]!.args[0]!.value, 4294967295n, "a uint64 given as a string");
  const bpf = compileProfile(profile);
  assert(bpf.length > 0 && bpf.length % 8 === 0, `a BPF program (${bpf.length} bytes)`);
  // The default ERRNO with no rule at all is a filter too (each arch: ERRNO(ENOSYS)).
  assert(compileProfile(profileFromOci({ defaultAction: "SCMP_ACT_ERRNO" })).length > 0, "minimal profile compiles");
  // Absent errnoRet on the default: EPERM, as the spec says.
  assertEquals(profileFromOci({ defaultAction: "SCMP_ACT_ERRNO" }).defaultAction, { action: "SCMP_ACT_ERRNO", ret: 1 });
});

Deno.test("profileFromOci: syscall names unknown to this libseccomp are skipped when compiling, as runc does", () => {
  const withUnknown = profileFromOci({
    ...ALLOW,
    syscalls: [{ names: ["no_such_syscall_2099", "mkdir", "another_future_call"], action: "SCMP_ACT_ERRNO" }],
  });
  const plain = profileFromOci({ ...ALLOW, syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] });
  assertEquals([...compileProfile(withUnknown)], [...compileProfile(plain)], "the same program as without them");
});

Deno.test("profileFromOci: two comparisons on one argument become two rules (runc's behaviour), not an error", () => {
  const profile = profileFromOci({
    ...ALLOW,
    syscalls: [{
      names: ["personality"],
      action: "SCMP_ACT_ERRNO",
      args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }, { index: 0, value: 0x20008, op: "SCMP_CMP_EQ" }],
    }],
  });
  assert(compileProfile(profile).length > 0, "it compiles");
});

Deno.test("profileFromOci ignores fields the spec does not define (Docker's includes, archMap), at every level", () => {
  const rule = { names: ["mkdir"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }] };
  const plain = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [rule] };
  const extra = {
    ...plain,
    archMap: [],
    syscalls: [{ ...rule, includes: { caps: ["CAP_SYS_ADMIN"] }, args: [{ ...rule.args[0], comment: "x" }] }],
  };
  assertEquals(profileFromOci(extra), profileFromOci(plain));
});

Deno.test("profileFromOci refuses what gcr cannot apply, naming the field", () => {
  const cases: [unknown, string][] = [
    [null, "linux.seccomp: not an object"],
    [{}, "linux.seccomp.defaultAction: missing"],
    [{ defaultAction: "SCMP_ACT_NOTIFY" }, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY is not supported"],
    [{ defaultAction: "SCMP_ACT_OK" }, 'linux.seccomp.defaultAction: "SCMP_ACT_OK" is not a seccomp action'],
    [{ defaultAction: "toString" }, 'linux.seccomp.defaultAction: "toString" is not a seccomp action'],
    [
      { defaultAction: "SCMP_ACT_ALLOW", defaultErrnoRet: 1 },
      "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno",
    ],
    [{ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: -1 }, "linux.seccomp.defaultErrnoRet: -1 is not an errno"],
    [
      {
        ...ALLOW,
        syscalls: [
          { names: ["a"], action: "SCMP_ACT_ERRNO" },
          { names: ["b"], action: "SCMP_ACT_ERRNO" },
          { names: ["c"], action: "SCMP_ACT_ERRNO" },
          { names: ["d"], action: "SCMP_ACT_NOTIFY" },
        ],
      },
      "linux.seccomp.syscalls[3].action: SCMP_ACT_NOTIFY is not supported",
    ],
    [{ ...ALLOW, listenerPath: "/run/agent.sock" }, 'linux.seccomp.listenerPath: "/run/agent.sock": gcr has no'],
    [{ ...ALLOW, listenerMetadata: "x" }, "linux.seccomp.listenerMetadata:"],
    [
      { ...ALLOW, flags: ["SECCOMP_FILTER_FLAG_LOG"] },
      "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_LOG is not supported",
    ],
    [
      { ...ALLOW, flags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"] },
      "linux.seccomp.flags[1]: SECCOMP_FILTER_FLAG_SPEC_ALLOW is not supported",
    ],
    [
      { ...ALLOW, flags: ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] },
      "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported",
    ],
    [{ ...ALLOW, flags: ["LOG"] }, 'linux.seccomp.flags[0]: "LOG" is not a seccomp flag'],
    [{ ...ALLOW, flags: "SECCOMP_FILTER_FLAG_LOG" }, "linux.seccomp.flags: not an array"],
    [{ ...ALLOW, architectures: ["x86_64"] }, 'linux.seccomp.architectures[0]: "x86_64" is not an SCMP_ARCH_* name'],
    [
      { ...ALLOW, architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"] },
      "linux.seccomp.architectures[1]: SCMP_ARCH_VAX is not known to this libseccomp",
    ],
    [{ ...ALLOW, syscalls: [{ names: [], action: "SCMP_ACT_ERRNO" }] }, "linux.seccomp.syscalls[0].names: empty"],
    [{ ...ALLOW, syscalls: [{ names: "mkdir", action: "SCMP_ACT_ERRNO" }] }, "linux.seccomp.syscalls[0].names: not an"],
    [
      { ...ALLOW, syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_KILL", errnoRet: 1 }] },
      "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL takes no errno",
    ],
    [
      { ...ALLOW, syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 70000 }] },
      "linux.seccomp.syscalls[0].errnoRet: 70000 is not an errno",
    ],
    [
      {
        ...ALLOW,
        syscalls: [{ names: ["x"], action: "SCMP_ACT_ERRNO", args: [{ index: 6, value: 1, op: "SCMP_CMP_EQ" }] }],
      },
      "linux.seccomp.syscalls[0].args[0].index: 6 (0-5)",
    ],
    [
      { ...ALLOW, syscalls: [{ names: ["x"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 1, op: "EQ" }] }] },
      'linux.seccomp.syscalls[0].args[0].op: "EQ" is not a comparison',
    ],
    [
      {
        ...ALLOW,
        syscalls: [{ names: ["x"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: -1, op: "SCMP_CMP_EQ" }] }],
      },
      "linux.seccomp.syscalls[0].args[0].value:",
    ],
    [
      {
        ...ALLOW,
        syscalls: [{ names: ["x"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 2 ** 60, op: "SCMP_CMP_EQ" }] }],
      },
      "linux.seccomp.syscalls[0].args[0].value:",
    ],
  ];
  for (const [input, expected] of cases) {
    const { message } = assertThrows(() => profileFromOci(input), Error, JSON.stringify(input));
    assert(message.startsWith(expected), `${JSON.stringify(input)}\n  expected: ${expected}…\n    actual: ${message}`);
    assert(!message.includes("\n"), "one line");
  }
  // TSYNC alone is accepted: the child that installs the filter has a single thread.
  assertEquals(profileFromOci({ ...ALLOW, flags: ["SECCOMP_FILTER_FLAG_TSYNC"] }).rules, []);
});

// ---------------------------------------------------------------------------
// Podman's default profile, as podman sends it

const CONTAINERS_PROFILE = "/usr/share/containers/seccomp.json";

function missingContainersProfile(): string | undefined {
  try {
    Deno.statSync(CONTAINERS_PROFILE);
    return undefined;
  } catch {
    return `${CONTAINERS_PROFILE} is not installed (golang-github-containers-common)`;
  }
}

/**
 * A resolved profile as `linux.seccomp`: what podman (containers/common
 * `setupSeccomp`) sends after resolving archMap for this machine and the
 * rules' includes/excludes against the container's capabilities.
 */
function toOci(profile: SeccompProfile): Record<string, unknown> {
  const action = (a: SeccompAction, errnoField: string) => ({
    action: a.action,
    ...("ret" in a ? { [errnoField]: a.ret } : {}),
  });
  const { action: defaultAction, ...defaultErrno } = action(profile.defaultAction, "defaultErrnoRet");
  return {
    defaultAction,
    ...defaultErrno,
    architectures: ["x86_64", ...profile.architectures].map((a) => `SCMP_ARCH_${a.toUpperCase()}`),
    syscalls: profile.rules.map((rule) => ({
      names: rule.names,
      ...action(rule.action, "errnoRet"),
      args: rule.args.map((a) => ({ index: a.index, value: Number(a.value), valueTwo: Number(a.valueTwo), op: a.op })),
    })),
  };
}

function podmanDefault(): Record<string, unknown> {
  return toOci(loadProfile(Deno.readTextFileSync(CONTAINERS_PROFILE), resolveCapabilities([], [])));
}

Deno.test(
  named(
    "podman's default profile, as linux.seccomp, compiles to the program its file compiles to",
    missingContainersProfile(),
  ),
  () => {
    const fromFile = loadProfile(Deno.readTextFileSync(CONTAINERS_PROFILE), resolveCapabilities([], []));
    const oci = podmanDefault();
    assertEquals(oci.defaultAction, "SCMP_ACT_ERRNO");
    assertEquals(oci.defaultErrnoRet, 38, "ENOSYS for what the allow-list does not name");
    const profile = profileFromOci(oci);
    assertEquals(profile.rules, fromFile.rules, "the same rules");
    const bpf = compileProfile(profile);
    assert(bpf.length / 8 > 100, `a long program (${bpf.length / 8} instructions)`);
    assertEquals([...bpf], [...compileProfile(fromFile)], "the same program (x86_64 is the native arch anyway)");
  },
);

// ---------------------------------------------------------------------------
// In a real container

/**
 * Runs `argv` in a busybox container whose filter is
 * `compileProfile(profileFromOci(oci))`, with Docker's default capabilities
 * and `capAdd`.
 */
async function runWithOciSeccomp(
  oci: unknown,
  argv: readonly string[],
  capAdd: readonly string[] = [],
): Promise<RunResult> {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-oci-seccomp-" });
  try {
    const script = join(dir, "run.ts");
    const module = (path: string) => JSON.stringify(`file://${join(REPO, path)}`);
    Deno.writeTextFileSync(
      script,
      `import { planIds } from ${module("plan/id_maps.ts")};
import { setQuiet } from ${module("output/log.ts")};
import { runSteps } from ${module("runner/runner.ts")};
import { compileProfile } from ${module("security/seccomp/compile.ts")};
import { profileFromOci } from ${module("security/seccomp/oci.ts")};
import { containerSteps } from ${module("steps/pipeline.ts")};
import { securityPlan } from ${module("tests/security/run_hardened.ts")};
const { rootfs, argv, oci, capAdd } = JSON.parse(Deno.args[0]);
setQuiet(true);
const security = { ...securityPlan(rootfs, { rootfs, argv, capAdd, seccomp: "unconfined" }), seccomp: compileProfile(profileFromOci(oci)) };
const status = await runSteps(containerSteps({
  id: "0123456789ab", hostname: "ociseccomp", rootfs, root: rootfs, volumes: [], argv,
  env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
  workdir: "/", ids: planIds(), network: "none", security,
}), "run");
Deno.exit("exited" in status ? status.exited : "signaled" in status ? 128 + status.signaled : 125);
`,
    );
    return await run(Deno.execPath(), ["run", "-A", script, JSON.stringify({ rootfs: BUSYBOX, argv, oci, capAdd })], {
      timeoutMs: 60_000,
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const MKDIR = ["sh", "-c", "mkdir /tmp/made && echo made"];

Deno.test(
  named(
    "inside: SCMP_ACT_ERRNO with errnoRet 13 for mkdir is what the kernel returns; without the rule mkdir works",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const denied = await runWithOciSeccomp({
      defaultAction: "SCMP_ACT_ALLOW",
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      flags: ["SECCOMP_FILTER_FLAG_TSYNC"],
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }],
    }, MKDIR);
    assertEquals(denied.code, 1, "mkdir fails", describe(denied));
    assertIncludes(denied.stderr, "Permission denied", "with errnoRet 13 (EACCES)", describe(denied));
    // Control: the same container with an allow-all filter.
    const allowed = await runWithOciSeccomp({ defaultAction: "SCMP_ACT_ALLOW" }, MKDIR);
    assertEquals(allowed.code, 0, "mkdir works", describe(allowed));
    assertEquals(allowed.stdout, "made\n", "", describe(allowed));
  },
);

Deno.test(
  named(
    "inside: podman's default profile (default ERRNO(ENOSYS), an allow-list) runs a shell, and denies sethostname " +
      "even with CAP_SYS_ADMIN",
    missingRoot() ?? missingContainersProfile(),
  ),
  async () => {
    await busyboxRootfs();
    const oci = podmanDefault();
    const ok = await runWithOciSeccomp(oci, MKDIR);
    assertEquals([ok.code, ok.stdout], [0, "made\n"], "the allow-list lets a shell and mkdir through", describe(ok));
    // The profile was resolved for Docker's default capabilities, so its
    // sethostname rule (errnoRet 1) stands even when the capability is added.
    const denied = await runWithOciSeccomp(oci, ["hostname", "other"], ["SYS_ADMIN"]);
    assertEquals(denied.code, 1, "sethostname fails", describe(denied));
    assertIncludes(denied.stderr, "Operation not permitted", "EPERM (errnoRet 1)", describe(denied));
    // Control: with the capability and an allow-all filter the kernel lets it.
    const control = await runWithOciSeccomp({ defaultAction: "SCMP_ACT_ALLOW" }, ["hostname", "other"], ["SYS_ADMIN"]);
    assertEquals(control.code, 0, "sethostname works unfiltered", describe(control));
  },
);
