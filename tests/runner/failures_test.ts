/**
 * gcr fails closed: a rootfs it must not mount into is refused before
 * anything runs, and a step that fails stops the child.
 */
import { join } from "node:path";
import {
  BUSYBOX,
  busyboxRootfs,
  copyRootfs,
  describe,
  GCR,
  gcr,
  isDead,
  listTree,
  liveProcessesWith,
  missingPrograms,
  missingRoot,
  named,
  parseMountinfo,
  ROOTFS_DIR,
  run,
} from "../fixtures.ts";
import { assert, assertEquals, assertMatch, lines } from "../helpers.ts";
import { exists } from "../../host/files.ts";

function hostMountsAt(point: string): number {
  return parseMountinfo(Deno.readTextFileSync("/proc/self/mountinfo")).filter((m) => m.mountPoint === point).length;
}

Deno.test(
  named(
    "a rootfs whose /proc is a symlink to /etc is refused: exit 125, one line naming it, host /etc untouched",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const copy = await copyRootfs(BUSYBOX);
    try {
      const proc = join(copy.path, "proc");
      Deno.removeSync(proc);
      Deno.symlinkSync("/etc", proc);
      const etcBefore = [...Deno.readDirSync("/etc")].map((e) => e.name).sort();
      const mountsBefore = hostMountsAt("/etc");

      const result = await gcr(["run", "-q", copy.path, "true"], { rootfsDir: false });
      assertEquals(result.code, 125, "exit status", describe(result));
      assertEquals(
        lines(result.stderr),
        [`gcr: rootfs ${proc} is a symlink (to /etc): refusing to mount over it`],
        "stderr: one line naming the symlink",
        describe(result),
      );
      assertEquals(result.stdout, "", "nothing ran", describe(result));
      assertEquals([...Deno.readDirSync("/etc")].map((e) => e.name).sort(), etcBefore, "the host's /etc listing");
      assertEquals(hostMountsAt("/etc"), mountsBefore, "mounts on the host's /etc");
      assertEquals(Deno.readLinkSync(proc), "/etc", "the symlink is left as it was");
    } finally {
      copy.remove();
    }
  },
);

Deno.test(
  named(
    "a failing step (tmp is a file): exit 125, one line `gcr: step mount-tmp: mount(…): ENOTDIR`, child stopped",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const copy = await copyRootfs(BUSYBOX);
    try {
      const tmp = join(copy.path, "tmp");
      Deno.removeSync(tmp);
      Deno.writeTextFileSync(tmp, "");
      // The mount target is the container's /tmp, opened inside its root (steps/in_root.ts).
      const expected = new RegExp(
        `^gcr: step mount-tmp: mount\\("tmpfs", "/proc/self/fd/\\d+" /\\* /tmp \\*/, "tmpfs", MS_NOSUID\\|MS_NODEV, ` +
          '"mode=1777"\\): ENOTDIR \\(Not a directory\\)$',
      );
      const before = listTree(copy.path);

      const quiet = await gcr(["run", "-q", copy.path, "true"], { rootfsDir: false });
      assertEquals(quiet.code, 125, "exit status", describe(quiet));
      assertEquals(lines(quiet.stderr).length, 1, "stderr is one line", describe(quiet));
      assertMatch(quiet.stderr.trim(), expected, "stderr is exactly the step's error", describe(quiet));

      // --trace tells the child's host pid; a marker argument finds any leftover
      // clone of gcr (before exec the child's command line is gcr's own).
      const marker = `gcr-test-${crypto.randomUUID()}`;
      const traced = await gcr(["run", "--trace", copy.path, "true", marker], { rootfsDir: false });
      assertEquals(traced.code, 125, "exit status with --trace", describe(traced));
      const pid = Number(
        assertMatch(traced.stderr, /→ child pid (\d+) \(host\)/, "trace names the child", describe(traced))[1],
      );
      assertMatch(lines(traced.stderr).at(-1)!, expected, "the last stderr line is the step's error", describe(traced));
      assertMatch(traced.stderr, /\[\d+\/\d+\] mount-tmp:/, "the trace reached mount-tmp", describe(traced));
      assert(isDead(pid), `the child (host pid ${pid}) must be stopped once gcr exits`, describe(traced));
      assert(!exists(`/proc/${pid}`), `/proc/${pid} must be gone: gcr reaps the child it killed`, describe(traced));
      assertEquals(liveProcessesWith(marker), [], "no process of that run is left", describe(traced));
      assertEquals(listTree(copy.path), before, "the rootfs copy is unchanged");
    } finally {
      copy.remove();
    }
  },
);

Deno.test(
  named(
    "user namespaces disabled (user.max_user_namespaces = 0): exit 125, one line naming the sysctl",
    missingRoot() ?? missingPrograms("unshare"),
  ),
  async () => {
    await busyboxRootfs();
    // The limit is set inside a user namespace of the test's own, where it
    // applies to that namespace only: the host's sysctl is left alone.
    const result = await run("unshare", [
      "--user",
      "--map-root-user",
      "sh",
      "-c",
      `echo 0 > /proc/sys/user/max_user_namespaces && exec '${GCR}' run -q --rootfs-dir '${ROOTFS_DIR}' busybox true`,
    ]);
    assertEquals(result.code, 125, "exit status", describe(result));
    const [line, ...rest] = lines(result.stderr);
    assertEquals(rest, [], "one line on stderr", describe(result));
    assertMatch(
      line ?? "",
      /^gcr: step clone: clone\(CLONE_NEWUSER\|.*\): ENOSPC \(No space left on device\): .*sysctl user\.max_user_namespaces is 0$/,
      "the message names the step, errno and the sysctl",
      describe(result),
    );
  },
);

Deno.test(
  named(
    "a failed bounding-set drop, reported with the run of drops it belongs to: exit 125, the command never runs, " +
      "--trace names the one",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    // A filter that refuses one drop. Without no_new_privs gcr installs it
    // before drop-capabilities (steps/pipeline.ts hardening), so the kernel
    // returns EPERM for exactly that prctl call.
    const dir = Deno.makeTempDirSync({ prefix: "gcr-drop-" });
    try {
      const profile = join(dir, "deny-drop.json");
      Deno.writeTextFileSync(
        profile,
        JSON.stringify({
          defaultAction: "SCMP_ACT_ALLOW",
          syscalls: [{
            names: ["prctl"],
            action: "SCMP_ACT_ERRNO",
            errnoRet: 1,
            args: [{ index: 0, value: 24, op: "SCMP_CMP_EQ" }, { index: 1, value: 21, op: "SCMP_CMP_EQ" }],
          }],
        }),
      );
      const args = (mode: string[]) => [
        "run",
        ...mode,
        "--rm",
        "--security-opt",
        `seccomp=${profile}`,
        "--security-opt",
        "no-new-privileges=false",
        "busybox",
        "echo",
        "the command ran",
      ];
      const quiet = await gcr(args(["-q"]));
      assertEquals(quiet.code, 125, "exit status", describe(quiet));
      assertEquals(quiet.stdout, "", "the command never ran", describe(quiet));
      assertEquals(
        lines(quiet.stderr),
        [
          "gcr: step drop-capabilities: prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) … " +
          "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) (28 calls reported together; --trace names the one): " +
          "EPERM (Operation not permitted)",
        ],
        "one line: the step, the run of calls, the errno",
        describe(quiet),
      );
      // --trace reports every call: the error is the one drop the filter refused.
      const traced = await gcr(args(["--trace"]));
      assertEquals(traced.code, 125, "exit status with --trace", describe(traced));
      assertEquals(traced.stdout, "", "the command never ran with --trace", describe(traced));
      assertEquals(
        lines(traced.stderr).at(-1),
        "gcr: step drop-capabilities: prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0): EPERM (Operation not permitted)",
        "the last stderr line names the drop",
        describe(traced),
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
