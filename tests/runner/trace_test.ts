/**
 * What gcr shows about its own work: --trace, `gcr explain`, and --step.
 */
import {
  busyboxRootfs,
  describe,
  GCR,
  gcr,
  gcrOk,
  liveProcessesWith,
  missingRoot,
  named,
  needs,
  REPO,
  ROOTFS_DIR,
  run,
  Running,
  type RunResult,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, lines } from "../helpers.ts";

const STEPS = [
  "clone",
  "die-with-parent",
  "close-fds",
  "map-ids",
  "enter-cgroup",
  "set-hostname",
  "bring-up-loopback",
  "make-mounts-private",
  "mount-overlay",
  "open-root",
  "mount-dev",
  "open-dev",
  "bind-devices",
  "mount-devpts",
  "mount-shm",
  "link-dev",
  "mount-proc",
  "mount-tmp",
  "mount-sys",
  "bind-volumes",
  "pivot-root",
  "detach-old-root",
  "mask-paths",
  "readonly-paths",
  "own-process-group",
  "limit-open-files",
  "drop-capabilities",
  "no-new-privs",
  "install-seccomp",
  "reset-signals",
  "exec",
];

Deno.test(
  named("--trace shows every step in order, its calls with results, and what changed", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcrOk(["run", "--trace", "busybox", "/bin/true"]);
    const headers = [...result.stderr.matchAll(/^\[(\d+)\/(\d+)\] ([a-z-]+): /gm)];
    assertEquals(headers.map((m) => m[3]), STEPS, "step names in order", describe(result));
    assertEquals(
      headers.map((m) => `${m[1]}/${m[2]}`),
      STEPS.map((_, i) => `${i + 1}/${STEPS.length}`),
      "step numbering",
      describe(result),
    );
    for (
      const part of [
        "clone(setcontext, stack, CLONE_VM|CLONE_SETTLS|CLONE_NEWUSER|",
        'pivot_root(".", ".") = 0',
        'umount2(".", MNT_DETACH) = 0',
        "prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) = 0",
        'execvp("/bin/true", {"/bin/true"}) → exec\'d',
        "changed: namespace user:",
        "changed: namespace mnt:",
        "changed: + mount /proc proc",
      ]
    ) assertIncludes(result.stderr, part, "trace output", describe(result));
    assertMatch(result.stderr, /→ child pid \d+ \(host\)/, "trace names the child's host pid", describe(result));
    assertMatch(
      result.stderr,
      /running as pid: 1 \| uid: 0 \| gid: 0$/m,
      "the log lines are still there",
      describe(result),
    );
  },
);

Deno.test(named("`gcr explain run busybox sh` prints the same steps and runs nothing", missingRoot()), async () => {
  await busyboxRootfs();
  const result = await gcrOk(["explain", "run", "busybox", "sh"]);
  const names = [...result.stdout.matchAll(/^ *(\d+)\. ([a-z-]+): /gm)];
  assertEquals(names.map((m) => m[2]), STEPS, "step names in order", describe(result));
  assertEquals(names.map((m) => Number(m[1])), STEPS.map((_, i) => i + 1), "step numbering", describe(result));
  assertIncludes(result.stdout, 'child: pivot_root(".", ".")', "explain shows the child's calls", describe(result));
  assertIncludes(result.stdout, 'gcr-exec: execvp("sh", {"sh"})', "explain shows the command", describe(result));
  assertEquals(result.stderr, "", "no log lines: no container was started", describe(result));

  // Nothing happens at all: not even the busybox image gets built.
  const empty = Deno.makeTempDirSync({ prefix: "gcr-explain-" });
  try {
    const bare = await gcrOk(["explain", "run", "busybox", "sh"], { rootfsDir: empty });
    assertEquals([...bare.stdout.matchAll(/^ *\d+\. ([a-z-]+): /gm)].map((m) => m[1]), STEPS, "steps", describe(bare));
    assertEquals([...Deno.readDirSync(empty)].map((e) => e.name), [], "explain built nothing in the rootfs folder");
  } finally {
    Deno.removeSync(empty, { recursive: true });
  }
});

/** gcr in a new session (no controlling terminal), so --step must read stdin. */
function stepWithoutTerminal(stdin: string, marker: string): Promise<RunResult> {
  return run("setsid", ["-w", GCR, "run", "--rootfs-dir", ROOTFS_DIR, "--step", "busybox", "true", marker], {
    cwd: REPO,
    stdin,
  });
}

Deno.test(
  named(
    "--step without a terminal and stdin at end-of-file: exit 125, a clear message, no child left",
    needs("setsid"),
  ),
  async () => {
    await busyboxRootfs();
    // No Enter at all: it stops at the first prompt. One Enter: the clone step
    // runs, then it stops at the second, and the cloned child must be killed.
    for (const [stdin, prompts] of [["", 1], ["\n", 2]] as const) {
      const marker = `gcr-test-${crypto.randomUUID()}`;
      const result = await stepWithoutTerminal(stdin, marker);
      assertEquals(result.code, 125, "exit status", describe(result));
      assertEquals(
        lines(result.stderr).at(-1),
        "gcr: aborted at the step prompt",
        "the last stderr line",
        describe(result),
      );
      assertEquals(
        result.stderr.match(/press Enter to run this step/g)?.length,
        prompts,
        "prompts shown before the abort",
        describe(result),
      );
      assertMatch(
        result.stderr,
        new RegExp(`\\[1/${STEPS.length}\\] clone: `),
        "the first prompt names the clone step",
        describe(result),
      );
      assertEquals(result.stdout, "", "the command never ran", describe(result));
      assertEquals(liveProcessesWith(marker), [], "no process of that run is left", describe(result));
    }
  },
);

Deno.test(
  named(
    "--step under a terminal (script): one Enter per step runs the container to the end",
    needs("setsid", "script"),
  ),
  async () => {
    await busyboxRootfs();
    const command = `${GCR} run --rootfs-dir ${ROOTFS_DIR} --step busybox sh -c 'echo hi-from-step; exit 4'`;
    const running = new Running("setsid", ["-w", "script", "-qec", command, "/dev/null"], {
      cwd: REPO,
      stdinPipe: true,
    });
    // The terminal delivers one line per read, so all the Enters can go at once.
    // Under a terminal, gcr's tty is also bound at /dev/console.
    const steps = STEPS.flatMap((step) => (step === "link-dev" ? [step, "bind-console"] : [step]));
    await running.write("\n".repeat(steps.length));
    // A line of its own: the exec prompt also shows the command, quoted.
    await running.waitForStdout(/^hi-from-step\r?$/m, 20_000);
    const result = await running.finish();
    assertEquals(result.code, 4, "script passes on gcr's exit status", describe(result));
    const prompts = [...result.stdout.matchAll(new RegExp(`^\\[(\\d+)/${steps.length}\\] ([a-z-]+): `, "gm"))].map((
      m,
    ) => m[2]);
    assertEquals(prompts, steps, "one prompt per step, in order", describe(result));
    assert(
      result.stdout.search(/^hi-from-step\r?$/m) > result.stdout.lastIndexOf("press Enter"),
      "the command ran after the last prompt",
      describe(result),
    );
  },
);

Deno.test(named("--trace of a failing exec still ends with the one-line error", missingRoot()), async () => {
  await busyboxRootfs();
  const result = await gcr(["run", "--trace", "busybox", "no-such-command"]);
  assertEquals(result.code, 127, "exit status", describe(result));
  assertMatch(
    lines(result.stderr).at(-1) ?? "",
    /^gcr: step exec: execvp\("no-such-command", \{"no-such-command"\}\): ENOENT/,
    "the last stderr line",
    describe(result),
  );
});
