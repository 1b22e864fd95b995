/**
 * Hardening (issue 4), shown from inside real containers: capability sets,
 * no_new_privs, the seccomp filter, masked and read-only paths, --user.
 *
 * tests/security/run_hardened.ts runs gcr's pipeline with the one runner, as a
 * subprocess whose output the test reads (runSteps shares its stdio with the
 * container), for the control cases `gcr run` does not offer (no masks, no
 * no_new_privs); tests/security/hardening_cli_test.ts checks the command line.
 */
import { join } from "node:path";
import { CAPABILITIES, capabilityMask } from "../../ffi/capabilities.ts";
import { resolveCapabilities } from "../../security/capabilities.ts";
import { compileProfile } from "../../security/seccomp/compile.ts";
import { loadProfile } from "../../security/seccomp/docker.ts";
import { defaultProfile } from "../../security/seccomp/profile.ts";
import { resolveUser, resolveUserIn, withHome } from "../../security/user.ts";
import { READ_IN_ROOT_LIMIT, readInRoot } from "../../ffi/safe_fs.ts";
import { dropCapabilities } from "../../steps/drop_capabilities.ts";
import { maskPaths } from "../../steps/mask_paths.ts";
import { readonlyPaths } from "../../steps/readonly_paths.ts";
import { setUser } from "../../steps/set_user.ts";
import { singleSet } from "../../steps/plan.ts";
import {
  BUSYBOX,
  busyboxRootfs,
  copyRootfs,
  describe,
  missingPrograms,
  missingRoot,
  named,
  REPO,
  run,
  type RunResult,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, assertThrows } from "../helpers.ts";
import type { HardenedRun } from "./run_hardened.ts";

/** Docker's default set as /proc/<pid>/status shows it. */
const DOCKER_DEFAULT_MASK = "00000000a80425fb";
const hex = (mask: bigint) => mask.toString(16).padStart(16, "0");

// ---------------------------------------------------------------------------
// What gcr decides before anything runs

Deno.test("capabilities: Docker's defaults, --cap-add/--cap-drop with or without CAP_, any case, ALL", () => {
  assertEquals(hex(capabilityMask(resolveCapabilities([], []))), DOCKER_DEFAULT_MASK);
  assertEquals(hex(capabilityMask(resolveCapabilities(["NET_ADMIN"], []))), "00000000a80435fb");
  assertEquals(hex(capabilityMask(resolveCapabilities(["cap_net_admin"], ["CAP_CHOWN"]))), "00000000a80435fa");
  assertEquals([...resolveCapabilities(["chown"], ["ALL"])], [CAPABILITIES.CHOWN]);
  assertEquals(hex(capabilityMask(resolveCapabilities(["all"], []))), "000001ffffffffff");
  assertThrows(() => resolveCapabilities(["NET_ADMN"], []), /Unknown capability: "NET_ADMN"/);
  assertThrows(() => resolveCapabilities([], ["cap_bogus"]), /Unknown capability: "cap_bogus"/);
});

Deno.test(
  named("capability numbers match linux/capability.h", missingPrograms("gcc")),
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "gcr-caps-" });
    try {
      const names = Object.keys(CAPABILITIES);
      const source = `#include <stdio.h>\n#include <linux/capability.h>\nint main(void) {\n${
        names.map((name) => `  printf("${name} %d\\n", CAP_${name});`).join("\n")
      }\n  printf("LAST %d\\n", CAP_LAST_CAP);\n  return 0;\n}\n`;
      Deno.writeTextFileSync(join(dir, "caps.c"), source);
      const compiled = await run("gcc", ["-o", join(dir, "caps"), join(dir, "caps.c")], { timeoutMs: 60_000 });
      assertEquals(compiled.code, 0, "gcc compiles", describe(compiled));
      const result = await run(join(dir, "caps"), []);
      const fromC = Object.fromEntries(result.stdout.trim().split("\n").map((l) => l.split(" ")));
      for (const [name, number] of Object.entries(CAPABILITIES)) assertEquals(Number(fromC[name]), number, name);
      assertEquals(Number(fromC.LAST), CAPABILITIES.CHECKPOINT_RESTORE, "CAP_LAST_CAP");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "alice:x:1000:1000:Alice:/home/alice:/bin/sh",
  "# a comment",
  "broken line",
  "bob:x:1001:100::/home/bob:/bin/sh",
].join("\n");
const GROUP = ["root:x:0:", "users:x:100:bob", "alice:x:1000:", "wheel:x:10:alice,bob", "staff:x:50:alice"].join("\n");

Deno.test("--user resolves names and numbers against the image's passwd and group, as Docker does", () => {
  assertEquals(resolveUserIn("alice", PASSWD, GROUP), {
    uid: 1000,
    gid: 1000,
    groups: [10, 50],
    home: "/home/alice",
    name: "alice",
  });
  assertEquals(resolveUserIn("1001", PASSWD, GROUP).groups, [100, 10]);
  assertEquals(resolveUserIn("alice:staff", PASSWD, GROUP), {
    uid: 1000,
    gid: 50,
    groups: [],
    home: "/home/alice",
    name: "alice",
  });
  assertEquals(resolveUserIn("bob:0", PASSWD, GROUP).gid, 0);
  // A number need not exist (gid 0, as in Docker); a name must.
  assertEquals(resolveUserIn("4242", PASSWD, GROUP), { uid: 4242, gid: 0, groups: [], home: "/" });
  assertEquals(resolveUserIn("4242:4343", PASSWD, GROUP).gid, 4343);
  assertThrows(() => resolveUserIn("carol", PASSWD, GROUP), /No user "carol" in the image's \/etc\/passwd/);
  assertThrows(() => resolveUserIn("alice:nogroup", PASSWD, GROUP), /No group "nogroup"/);
  assertThrows(() => resolveUserIn("a:b:c", PASSWD, GROUP), /Invalid --user "a:b:c"/);
  assertThrows(() => resolveUserIn("alice:", PASSWD, GROUP), /Invalid --user/);
});

Deno.test("HOME as runc sets it: from the uid's /etc/passwd entry, else /, unless the environment has one", () => {
  const path = "PATH=/bin";
  assertEquals(withHome([path], 0, PASSWD), [path, "HOME=/root"]);
  assertEquals(withHome([path], 1001, PASSWD), [path, "HOME=/home/bob"]);
  assertEquals(withHome([path], 4242, PASSWD), [path, "HOME=/"], "a uid without an entry");
  assertEquals(withHome([path], 0, ""), [path, "HOME=/"], "no /etc/passwd");
  assertEquals(withHome(["HOME=/mine", path], 0, PASSWD), ["HOME=/mine", path], "a HOME of config.json's is kept");
  assertEquals(
    withHome(["HOME=", path], 0, PASSWD),
    [path, "HOME=/root"],
    "an empty one is not (runc: Getenv is empty)",
  );
});

Deno.test("readInRoot resolves symlinks inside the root, as the container would see its /etc/passwd", () => {
  const root = Deno.makeTempDirSync({ prefix: "gcr-in-root-" });
  try {
    Deno.mkdirSync(join(root, "etc"));
    Deno.mkdirSync(join(root, "data"));
    Deno.writeTextFileSync(join(root, "data/passwd"), "inside\n");
    Deno.symlinkSync("/data/passwd", join(root, "etc/passwd")); // absolute: the root's /data, not the host's
    assertEquals(readInRoot(root, "/etc/passwd"), "inside\n");
    Deno.symlinkSync("../../../../../../etc/hostname", join(root, "etc/group")); // cannot climb out of the root
    assertEquals(readInRoot(root, "/etc/group"), "", "a link out of the root ends inside it, where there is nothing");
    assertEquals(readInRoot(root, "/etc/shadow"), "", "a missing file");
    assertEquals(readInRoot(root, "/etc"), "", "a folder is no file");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("readInRoot does not wait on a pseudo-file the container's /etc/passwd leads to, nor read a huge one", async () => {
  // A running container's root is read through /proc/<pid>/root, where its
  // own /proc is mounted: /etc/passwd -> /proc/kmsg (regular, size 0, a read
  // that waits for the kernel's log) would have held gcr at create or exec.
  // The test's own mount namespace holds the proc mount; `timeout` ends a
  // read that waits, which fails the test by its status.
  const root = Deno.makeTempDirSync({ prefix: "gcr-in-root-proc-" });
  try {
    for (const dir of ["etc", "proc", "data"]) Deno.mkdirSync(join(root, dir));
    Deno.symlinkSync("/proc/kmsg", join(root, "etc/passwd"));
    Deno.symlinkSync("/proc/self/environ", join(root, "etc/group"));
    Deno.writeTextFileSync(join(root, "data/big"), "x".repeat(READ_IN_ROOT_LIMIT + 1));
    Deno.writeTextFileSync(join(root, "data/limit"), "y".repeat(READ_IN_ROOT_LIMIT));
    const script = `
      import { readInRoot } from ${JSON.stringify(new URL("../../ffi/safe_fs.ts", import.meta.url).href)};
      const root = Deno.args[0];
      console.log(JSON.stringify(["/etc/passwd", "/etc/group", "/data/big", "/data/limit"].map((p) => readInRoot(root, p).length)));
    `;
    const result = await run("timeout", [
      "60",
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount -t proc proc "$1/proc" && exec "$2" eval "$3" "$1"',
      "sh",
      root,
      Deno.execPath(),
      script,
    ]);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(
      JSON.parse(result.stdout),
      [0, 0, 0, READ_IN_ROOT_LIMIT],
      "kmsg and environ are empty by size, so unread; the file over the limit unread, the one at it read whole",
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("--user never reads the host's files through a link in the image's /etc/passwd or /etc/group", () => {
  const root = Deno.makeTempDirSync({ prefix: "gcr-user-root-" });
  // A copy of what a hostile image would aim at: a passwd and group outside its root.
  const host = Deno.makeTempDirSync({ prefix: "gcr-user-host-" });
  try {
    Deno.writeTextFileSync(join(host, "passwd"), "hostonly:x:4242:4242::/h:/bin/sh\n");
    Deno.writeTextFileSync(join(host, "group"), "hostgroup:x:4343:hostonly\n");
    Deno.mkdirSync(join(root, "etc"));
    Deno.symlinkSync(join(host, "passwd"), join(root, "etc/passwd"));
    Deno.symlinkSync(join(host, "group"), join(root, "etc/group"));
    assertThrows(() => resolveUser("hostonly", root), Error, 'No user "hostonly" in the image\'s /etc/passwd');
    assertThrows(() => resolveUser("0:hostgroup", root), Error, 'No group "hostgroup"');
    assertEquals(resolveUser("4242", root).gid, 0, "a uid alone: no entry read, so gid 0, not the host file's 4242");
  } finally {
    Deno.removeSync(root, { recursive: true });
    Deno.removeSync(host, { recursive: true });
  }
});

Deno.test("set-user: groups, then gid, then uid, as raw syscalls; unmapped ids and rootless groups are refused", () => {
  const alice = resolveUserIn("alice", PASSWD, GROUP);
  const all = [{ inside: 0, outside: 0, count: 65536 }];
  const root = { uid: all, gid: all, via: "direct", setgroups: "allow", writer: "root" } as const;
  const solo = { ...root, uid: [{ inside: 0, outside: 1000, count: 1 }], setgroups: "deny" } as const;
  assertEquals(setUser(alice, root).child.map((c) => c.show), [
    "setgroups(2, {10, 50}) [raw syscall 116]",
    "setresgid(1000, 1000, 1000) [raw syscall 119]",
    "setresuid(1000, 1000, 1000) [raw syscall 117]",
  ]);
  const plain = resolveUserIn("4242", PASSWD, GROUP);
  assertEquals(setUser(plain, { ...root, setgroups: "deny" }).child.length, 2);
  assertThrows(() => setUser(alice, { ...root, setgroups: "deny" }), /setgroups is denied/);
  assertThrows(() => setUser(plain, solo), /Cannot run as uid 4242: the container's user namespace maps only 0-0/);
});

Deno.test("drop-capabilities: every cap not kept leaves the bounding set; SETUID/SETGID stay effective for set-user", () => {
  const keep = resolveCapabilities([], []);
  const step = dropCapabilities(singleSet(keep), { lastCapability: 40 });
  const drops = step.child.filter((c) => c.show.startsWith("prctl(PR_CAPBSET_DROP"));
  assertEquals(drops.length, 41 - keep.size);
  assertEquals(step.child.at(-1)!.fn, "syscall");
  assertIncludes(step.child.at(-2)!.show, "PR_CAP_AMBIENT_CLEAR_ALL");
  const noSetuid = singleSet(resolveCapabilities([], ["SETUID", "SETGID"]));
  // Before set-user to uid 1000 nothing takes CAP_SETUID out of the
  // effective set: no capset until set-capabilities, after set-user (runc's
  // order; before it kept SETUID/SETGID in its capset for this).
  const beforeUser = dropCapabilities(noSetuid, { lastCapability: 40, userUid: 1000 }).child;
  assert(!beforeUser.some((c) => c.show.startsWith("capset")), "no capset before set-user", beforeUser.at(-1)!.show);
  assert(!dropCapabilities(noSetuid, { lastCapability: 40 }).child.at(-1)!.show.includes("CAP_SETUID"), "not for root");
});

Deno.test("mask-paths and readonly-paths leave out what the kernel lacks; files get /dev/null, folders a tmpfs", () => {
  const kinds: Record<string, "file" | "directory"> = { "/proc/keys": "file", "/sys/firmware": "directory" };
  const mask = maskPaths(["/proc/keys", "/proc/kcore", "/sys/firmware"], (p) => kinds[p]);
  assertEquals(mask.child.map((c) => c.show), [
    'mount("/dev/null", "/proc/keys", NULL, MS_BIND, NULL)',
    'mount("tmpfs", "/sys/firmware", "tmpfs", MS_RDONLY, NULL)',
  ]);
  const ro = readonlyPaths(["/proc/sys", "/proc/sysrq-trigger"], (p) => (p === "/proc/sys" ? "directory" : undefined));
  assertEquals(ro.child.map((c) => c.show), [
    'mount("/proc/sys", "/proc/sys", NULL, MS_BIND|MS_REC, NULL)',
    'mount("/proc/sys", "/proc/sys", NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)',
  ]);
});

Deno.test("seccomp profiles: Docker's JSON format, with clear errors for what gcr does not support", () => {
  const caps = resolveCapabilities([], []);
  const bpf = compileProfile(defaultProfile(caps));
  assert(bpf.length > 0 && bpf.length % 8 === 0, `a BPF program of 8-byte instructions (${bpf.length} bytes)`);
  const profile = loadProfile(
    {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [
        { names: ["keyctl"], action: "SCMP_ACT_ERRNO" },
        {
          names: ["unshare"],
          action: "SCMP_ACT_ERRNO",
          args: [{ index: 0, value: 0x10000000, op: "SCMP_CMP_MASKED_EQ" }],
        },
        { names: ["getcwd"], action: "SCMP_ACT_ERRNO", errnoRet: 13, comment: "x" },
        { names: ["bpf"], action: "SCMP_ACT_ERRNO", includes: { caps: ["CAP_SYS_ADMIN"] } },
        { names: ["no_such_syscall_here"], action: "SCMP_ACT_KILL" },
      ],
    },
    caps,
  );
  assertEquals(profile.rules.length, 4, "the bpf rule needs CAP_SYS_ADMIN, which the default set lacks");
  assertEquals(profile.rules[1]!.args, [{ index: 0, op: "SCMP_CMP_MASKED_EQ", value: 0x10000000n, valueTwo: 0n }]);
  assert(compileProfile(profile).length > 0, "it compiles; the unknown syscall name is skipped");
  assertThrows(
    () => loadProfile({ defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/x" }, caps),
    /Invalid seccomp profile listenerPath: "\/x": gcr has no seccomp listener/,
  );
  assertThrows(
    () => loadProfile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["x"], action: "SCMP_ACT_OK" }] }, caps),
    /Unknown seccomp profile action at syscalls\[0\]\.action: "SCMP_ACT_OK"/,
  );
  // Fields the format does not define are ignored, as Docker's Go decoder does.
  assertEquals(
    loadProfile(
      { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["x"], action: "SCMP_ACT_ERRNO", x: 1 }] },
      caps,
    ),
    loadProfile({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["x"], action: "SCMP_ACT_ERRNO" }] }, caps),
  );
  assertThrows(
    () => loadProfile({ defaultAction: "SCMP_ACT_NOTIFY" }, caps),
    /SCMP_ACT_NOTIFY/,
  );
});

const CONTAINERS_PROFILE = "/usr/share/containers/seccomp.json";

Deno.test(
  named(
    "seccomp: the containers-common profile (Docker's format, allow-list) loads and compiles",
    (() => {
      try {
        Deno.statSync(CONTAINERS_PROFILE);
        return undefined;
      } catch {
        return `${CONTAINERS_PROFILE} is not installed (golang-github-containers-common)`;
      }
    })(),
  ),
  () => {
    const profile = loadProfile(Deno.readTextFileSync(CONTAINERS_PROFILE), resolveCapabilities([], []));
    assertEquals(profile.defaultAction, { action: "SCMP_ACT_ERRNO", ret: 38 }, "defaultErrnoRet ENOSYS");
    assertEquals(profile.architectures, ["x86", "x32"], "this machine's archMap entry");
    const bpf = compileProfile(profile);
    assert(bpf.length / 8 > 100, `a long program (${bpf.length / 8} instructions)`);
  },
);

// ---------------------------------------------------------------------------
// Inside real containers

/** Runs a container with the hardening steps (tests/security/run_hardened.ts). */
function hardened(options: Partial<HardenedRun> & { argv: readonly string[] }): Promise<RunResult> {
  const spec: HardenedRun = { rootfs: BUSYBOX, ...options };
  return run(Deno.execPath(), ["run", "-A", join(REPO, "tests/security/run_hardened.ts"), JSON.stringify(spec)], {
    timeoutMs: 60_000,
  });
}

async function hardenedOk(options: Partial<HardenedRun> & { argv: readonly string[] }): Promise<RunResult> {
  const result = await hardened(options);
  assertEquals(result.code, 0, "the container ran and exited 0", describe(result));
  return result;
}

/** `Field: value` lines of a /proc/<pid>/status text. */
function status(text: string): Record<string, string> {
  return Object.fromEntries(
    text.split("\n").map((line) => line.match(/^(\w+):\s*(.*)$/)).filter((m) => m !== null).map((
      m,
    ) => [m[1]!, m[2]!.trim()]),
  );
}

const STATUS = ["cat", "/proc/self/status"];

Deno.test(
  named("inside: capability sets are Docker's defaults, no_new_privs is set and a filter is installed", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await hardenedOk({ argv: STATUS });
    const s = status(result.stdout);
    const context = describe(result);
    assertEquals(
      [s.CapBnd, s.CapEff, s.CapPrm],
      [DOCKER_DEFAULT_MASK, DOCKER_DEFAULT_MASK, DOCKER_DEFAULT_MASK],
      "",
      context,
    );
    assertEquals(
      [s.CapInh, s.CapAmb],
      ["0000000000000000", "0000000000000000"],
      "inheritable and ambient empty",
      context,
    );
    assertEquals([s.NoNewPrivs, s.Seccomp], ["1", "2"], "NoNewPrivs: 1, Seccomp: 2 (filter)", context);
  },
);

Deno.test(
  named("inside: --cap-add NET_ADMIN and --cap-drop CHOWN change all three sets", missingRoot()),
  async () => {
    await busyboxRootfs();
    const added = status((await hardenedOk({ argv: STATUS, capAdd: ["NET_ADMIN"] })).stdout);
    assertEquals([added.CapBnd, added.CapEff, added.CapPrm], Array(3).fill("00000000a80435fb"));
    const dropped = status((await hardenedOk({ argv: STATUS, capDrop: ["chown"] })).stdout);
    assertEquals([dropped.CapBnd, dropped.CapEff, dropped.CapPrm], Array(3).fill("00000000a80425fa"));
    // What the sets are for: without CHOWN, root cannot give a file away.
    const chown = await hardened({ argv: ["sh", "-c", "touch /tmp/f && chown 1000 /tmp/f"], capDrop: ["CHOWN"] });
    assertEquals(chown.code, 1, "chown fails without CAP_CHOWN", describe(chown));
    assertIncludes(chown.stderr, "Operation not permitted", "EPERM", describe(chown));
  },
);

Deno.test(
  named(
    "inside: `unshare -U` is denied by the filter's argument rule; other unshares follow the capabilities",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const denied = await hardened({ argv: ["unshare", "-U", "true"] });
    assertEquals(denied.code, 1, "unshare -U fails", describe(denied));
    assertIncludes(denied.stderr, "unshare(0x10000000): Operation not permitted", "EPERM", describe(denied));
    // With CAP_SYS_ADMIN the filter allows unshare, except of a user namespace:
    // that is the SCMP_CMP_MASKED_EQ comparison at work, not a blanket block.
    const admin = await hardened({
      argv: ["sh", "-c", "unshare -u true && echo uts-ok; unshare -U true"],
      capAdd: ["SYS_ADMIN"],
    });
    assertIncludes(admin.stdout, "uts-ok", "unshare -u works with CAP_SYS_ADMIN", describe(admin));
    assertIncludes(
      admin.stderr,
      "unshare(0x10000000): Operation not permitted",
      "unshare -U still EPERM",
      describe(admin),
    );
    // Control: unconfined, the same kernel lets container root make a user namespace.
    const unconfined = await hardened({ argv: ["unshare", "-U", "true"], seccomp: "unconfined" });
    assertEquals(unconfined.code, 0, "unshare -U works without the filter", describe(unconfined));
  },
);

Deno.test(
  named("inside: keyctl, add_key and request_key are denied (EPERM), unlike without the filter", needsGcc()),
  async () => {
    await busyboxRootfs();
    const copy = await copyRootfs(BUSYBOX);
    try {
      await compileProbe(join(copy.path, "probe"));
      const filtered = await hardenedOk({ rootfs: copy.path, argv: ["/probe", "keys"] });
      assertEquals(filtered.stdout, "keyctl: EPERM\nadd_key: EPERM\nrequest_key: EPERM\n", "", describe(filtered));
      const unconfined = await hardenedOk({ rootfs: copy.path, argv: ["/probe", "keys"], seccomp: "unconfined" });
      assertMatch(unconfined.stdout, /^keyctl: OK\n/, "keyctl works without the filter", describe(unconfined));
    } finally {
      copy.remove();
    }
  },
);

Deno.test(
  named("inside: a profile file (--security-opt seccomp=profile.json) is what the kernel enforces", missingRoot()),
  async () => {
    await busyboxRootfs();
    const dir = Deno.makeTempDirSync({ prefix: "gcr-seccomp-" });
    try {
      const path = join(dir, "profile.json");
      Deno.writeTextFileSync(
        path,
        JSON.stringify({
          defaultAction: "SCMP_ACT_ALLOW",
          syscalls: [{ names: ["sethostname"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }],
        }),
      );
      const result = await hardened({ argv: ["hostname", "other"], seccomp: path, capAdd: ["SYS_ADMIN"] });
      assertEquals(result.code, 1, "sethostname fails", describe(result));
      assertIncludes(result.stderr, "Permission denied", "with the profile's errnoRet 13 (EACCES)", describe(result));
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

Deno.test(
  named("inside: masked paths read empty, /sys/firmware is an empty folder, /proc/sys is read-only", missingRoot()),
  async () => {
    await busyboxRootfs();
    const script = [
      'for f in /proc/keys /proc/timer_list; do echo "$f $(cat $f | wc -c)"; done',
      'echo "kcore $(test -e /proc/kcore && cat /proc/kcore | wc -c || echo absent)"',
      'echo "firmware $(ls -A /sys/firmware | wc -l)"',
      "echo 1 > /proc/sys/kernel/ns_last_pid && echo written",
      "echo 1 > /sys/firmware/x 2>/dev/null || echo firmware-ro",
    ].join("; ");
    const masked = await hardenedOk({ argv: ["sh", "-c", script] });
    const context = describe(masked);
    assertIncludes(masked.stdout, "/proc/keys 0\n/proc/timer_list 0\n", "masked files read empty", context);
    const hostHasKcore = (() => {
      try {
        Deno.statSync("/proc/kcore");
        return true;
      } catch {
        return false;
      }
    })();
    // This kernel may lack /proc/kcore (CONFIG_PROC_KCORE): then it is skipped, and absent inside too.
    assertIncludes(masked.stdout, hostHasKcore ? "kcore 0\n" : "kcore absent\n", "kcore", context);
    assertIncludes(masked.stdout, "firmware 0\n", "/sys/firmware is empty", context);
    assert(!masked.stdout.includes("written"), "/proc/sys/kernel/ns_last_pid cannot be written", context);
    assertIncludes(masked.stderr, "Read-only file system", "EROFS", context);
    assertIncludes(masked.stdout, "firmware-ro", "the tmpfs over /sys/firmware is read-only", context);
    // Control: without the two steps the same files have content and /proc/sys is writable.
    const open = await hardenedOk({ argv: ["sh", "-c", script], masks: false });
    assertMatch(open.stdout, /\/proc\/timer_list [1-9]\d*\n/, "timer_list has content unmasked", describe(open));
    assertMatch(open.stdout, /firmware [1-9]/, "/sys/firmware has entries unmasked", describe(open));
  },
);

function needsGcc(): string | undefined {
  return missingRoot() ?? missingPrograms("gcc");
}

async function compileProbe(output: string): Promise<void> {
  const source = join(REPO, "tests/security/probe.c");
  const compiled = await run("gcc", ["-static", "-O2", "-Wall", "-o", output, source], { timeoutMs: 60_000 });
  assertEquals(compiled.code, 0, "gcc -static compiles the probe", describe(compiled));
}

Deno.test(
  named("inside: a set-uid root binary does not raise a --user 1000 process under no_new_privs", needsGcc()),
  async () => {
    await busyboxRootfs();
    const copy = await copyRootfs(BUSYBOX);
    try {
      const probe = join(copy.path, "probe");
      await compileProbe(probe);
      Deno.chownSync(probe, 0, 0);
      Deno.chmodSync(probe, 0o4755);
      const guarded = await hardenedOk({ rootfs: copy.path, argv: ["/probe", "ids"], user: "1000" });
      assertEquals(guarded.stdout, "ruid=1000 euid=1000\n", "set-uid bit ignored", describe(guarded));
      // Control: the same binary without no-new-privs does become root.
      const control = await hardenedOk({
        rootfs: copy.path,
        argv: ["/probe", "ids"],
        user: "1000",
        noNewPrivs: false,
        seccomp: "unconfined",
      });
      assertEquals(control.stdout, "ruid=1000 euid=0\n", "without no_new_privs set-uid works", describe(control));
      // Without no_new_privs the kernel takes a filter only from a process
      // with CAP_SYS_ADMIN: gcr installs it before the capability drop then
      // (as runc does), and the filter stays across the set-uid exec.
      const filtered = await hardened({
        rootfs: copy.path,
        argv: ["/probe", "ids"],
        user: "1000",
        noNewPrivs: false,
        trace: true,
      });
      assertEquals(
        [filtered.code, filtered.stdout],
        [0, "ruid=1000 euid=0\n"],
        "the filter without no_new_privs",
        describe(filtered),
      );
      const order = ["install-seccomp", "drop-capabilities", "set-user"].map((name) =>
        filtered.stderr.indexOf(`] ${name}:`)
      );
      assert(
        order.every((at) => at >= 0) && order[0]! < order[1]! && order[1]! < order[2]!,
        "seccomp, then capabilities, then user",
        describe(filtered),
      );
    } finally {
      copy.remove();
    }
  },
);

Deno.test(
  named("inside: --user resolves names from the image and switches uid, gid and groups; caps go", missingRoot()),
  async () => {
    await busyboxRootfs();
    const copy = await copyRootfs(BUSYBOX);
    try {
      Deno.writeTextFileSync(join(copy.path, "etc/passwd"), PASSWD + "\n");
      Deno.writeTextFileSync(join(copy.path, "etc/group"), GROUP + "\n");
      const alice = status((await hardenedOk({ rootfs: copy.path, argv: STATUS, user: "alice" })).stdout);
      assertEquals([alice.Uid, alice.Gid, alice.Groups], ["1000\t1000\t1000\t1000", "1000\t1000\t1000\t1000", "10 50"]);
      assertEquals(
        [alice.CapEff, alice.CapPrm],
        ["0000000000000000", "0000000000000000"],
        "a non-root uid has no caps",
      );
      assertEquals(alice.CapBnd, DOCKER_DEFAULT_MASK, "the bounding set stays Docker's");
      const staff = status((await hardenedOk({ rootfs: copy.path, argv: STATUS, user: "alice:staff" })).stdout);
      assertEquals([staff.Uid, staff.Gid, staff.Groups], ["1000\t1000\t1000\t1000", "50\t50\t50\t50", ""]);
      const id = await hardenedOk({ rootfs: copy.path, argv: ["id"], user: "bob" });
      assertEquals(id.stdout, "uid=1001(bob) gid=100(users) groups=10(wheel),100(users)\n", "", describe(id));
      // --cap-drop SETUID,SETGID does not stop the switch (the kernel drops them with it).
      const noSetuid = await hardenedOk({
        rootfs: copy.path,
        argv: ["id", "-u"],
        user: "4242",
        capDrop: ["SETUID", "SETGID"],
      });
      assertEquals(noSetuid.stdout, "4242\n", "", describe(noSetuid));
      const unknown = await hardened({ rootfs: copy.path, argv: ["id"], user: "carol" });
      assertEquals(unknown.code, 125, "an unknown name fails before the container starts", describe(unknown));
      assertIncludes(unknown.stderr, `No user "carol"`, "", describe(unknown));
    } finally {
      copy.remove();
    }
  },
);
