/**
 * gcr as an OCI runtime (runc's command line), driven the way an engine
 * drives it (tests/oci/oci_env.ts): config.json edited per test, every gcr
 * call with its own `--root`. What is checked is
 * what a user or an engine sees: exit statuses, messages, `state`, files the
 * container writes into its rootfs or a bound host folder, /proc of its
 * processes, cgroup folders, and that nothing is left behind.
 *
 * @module
 */
import { ociSteps } from "../../oci/plan.ts";
import { readSpec } from "../../oci/spec/spec.ts";
import { CAPABILITIES, capabilityMask, capabilityNumber } from "../../ffi/capabilities.ts";
import { join } from "node:path";
import {
  describe,
  GCR,
  gcr,
  isDead,
  liveProcessesInPidNamespace,
  liveProcessesWith,
  named,
  REPO,
  run,
  Running,
  type RunResult,
  STATE_DIR,
} from "../fixtures.ts";
import {
  assert,
  assertEquals,
  assertIncludes,
  assertMatch,
  assertNotEquals,
  assertNotIncludes,
  lines,
  waitFor,
} from "../helpers.ts";
import { exists, readTextOr } from "../../host/files.ts";
import { sleep } from "../../host/time.ts";
import { cgroupFoldersOf, type Json, PATH_ENV, sh, SKIP, withOci } from "./oci_env.ts";

// ---------------------------------------------------------------------------
// 1. Lifecycle

Deno.test(
  named("oci lifecycle: create waits at the gate, start runs it, state follows, delete removes", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = sh("echo ran > /ran; while [ ! -e /go ]; do sleep 0.05; done");
      });
      const rootfs = join(bundle, "rootfs");
      const id = o.newId();
      const pidFile = join(o.work, "init.pid");
      // The container waits for /go, which only comes after create: a create
      // that waited for its process would never return here.
      const created = await o.create(id, bundle, ["--pid-file", pidFile]);
      assertEquals(created.code, 0, "create exits 0", describe(created));
      const pidText = Deno.readTextFileSync(pidFile);
      assertMatch(pidText, /^[1-9]\d*$/, "the pid file holds one pid, no newline");
      const pid = Number(pidText);
      o.pids.push(pid);
      assert(!isDead(pid), `the container's process ${pid} is alive after create`);
      assertMatch(readTextOr(`/proc/${pid}/status`), /^NSpid:\s+\d+\s+1$/m, "pid 1 of a new PID namespace");
      const state = await o.state(id);
      assertEquals(
        { status: state.status, pid: state.pid, id: state.id, bundle: state.bundle },
        { status: "created", pid, id, bundle },
        "state after create",
      );
      await sleep(300);
      assert(!exists(join(rootfs, "ran")), "the command must not run before start");

      await o.gcrOk(["start", id]);
      await waitFor("the command to write /ran", () => exists(join(rootfs, "ran")) || undefined);
      assertEquals(readTextOr(join(rootfs, "ran")), "ran\n", "the command's file");
      const running = await o.state(id);
      assertEquals({ status: running.status, pid: running.pid }, { status: "running", pid }, "state after start");
      const again = await o.gcr(["start", id]);
      assert(again.code !== 0, "a second start fails", describe(again));

      Deno.writeTextFileSync(join(rootfs, "go"), "");
      await o.waitStatus(id, "stopped");
      assert(isDead(pid), "the process is gone once stopped");

      await o.gcrOk(["delete", id]);
      const gone = await o.gcr(["state", id]);
      assert(gone.code !== 0, "state of a deleted container fails", describe(gone));
      assertMatch(gone.stderr, /does not exist|no such container/i, "state says it does not exist", describe(gone));
      o.assertGone(id, [pid]);
    }),
);

// ---------------------------------------------------------------------------
// 2. stdio

Deno.test(
  named("oci stdio: the container writes to create's stdout and stderr, after create exited", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = sh("echo out-from-container; echo err-from-container >&2");
      });
      const id = o.newId();
      const child = new Deno.Command(GCR, {
        args: ["--root", o.root, "create", "--bundle", bundle, id],
        cwd: REPO,
        env: { GCR_STATE: STATE_DIR },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          try {
            Deno.kill(child.pid, "SIGKILL");
          } catch { /* gone */ }
          reject(new Error("gcr create did not exit"));
        }, 20_000);
      });
      try {
        const status = await Promise.race([child.status, timeout]);
        assertEquals(status.code, 0, "create exits 0 (its stdout still open in the container)");
        const state = await o.state(id);
        o.pids.push(state.pid);
        assertEquals(state.status, "created", "state after create");
        await o.gcrOk(["start", id]);
        // The pipes end when the container, the last holder of their write ends, exits.
        const [stdout, stderr] = await Promise.race([output, timeout]);
        assertEquals(stdout, "out-from-container\n", "the container's stdout came through create's pipe");
        assertIncludes(stderr, "err-from-container\n", "the container's stderr came through create's pipe");
      } finally {
        clearTimeout(timer);
        await o.gcr(["delete", "--force", id]);
        await output.catch(() => {});
      }
    }),
);

Deno.test(
  named("oci --preserve-fds 2: the caller's descriptors 3 and 4 reach the command, nothing else does", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        // ls's own handle on /proc/self/fd is 5: nothing of gcr's may show above it.
        c.process.args = sh("echo to-fd3 >&3; cat <&4 >&3; echo $(ls /proc/self/fd) >&3");
      });
      const id = o.newId();
      const input = o.folder("in4") + "/data";
      Deno.writeTextFileSync(input, "from-fd4\n");
      const output = o.folder("out3") + "/data";
      const created = await run(
        "sh",
        [
          "-c",
          'exec 3>"$1" 4<"$2"; shift 2; exec "$@" >/dev/null 2>&1',
          "sh",
          output,
          input,
          GCR,
          "--root",
          o.root,
          "create",
          "--bundle",
          bundle,
          "--preserve-fds",
          "2",
          id,
        ],
        { cwd: REPO, env: { GCR_STATE: STATE_DIR } },
      );
      assertEquals(created.code, 0, "create --preserve-fds 2", describe(created));
      o.pids.push((await o.state(id)).pid);
      await o.gcrOk(["start", id]);
      await o.waitStatus(id, "stopped");
      assertEquals(
        Deno.readTextFileSync(output),
        "to-fd3\nfrom-fd4\n0 1 2 3 4 5\n",
        "fd 3 and fd 4 are the caller's; no other descriptor reached the command",
      );
      const bad = await o.gcr(["create", "--bundle", bundle, "--preserve-fds", "x", o.newId()]);
      assert(bad.code !== 0, "a count that is not a number is refused");
      assertIncludes(bad.stderr, "--preserve-fds", "the error names the option", describe(bad));
    }),
);

Deno.test(
  named("oci namespaces with a path are joined, not made (a network namespace an engine made)", SKIP),
  () =>
    withOci(async (o) => {
      // The engine's network namespace: held by a process of the test's own.
      const holder = new Deno.Command("unshare", { args: ["--net", "sleep", "60"], stdin: "null" }).spawn();
      try {
        let path = "";
        for (let i = 0; i < 100 && !path; i++) {
          const ns = Deno.readLinkSync(`/proc/${holder.pid}/ns/net`);
          if (ns !== Deno.readLinkSync("/proc/self/ns/net")) path = `/proc/${holder.pid}/ns/net`;
          else await sleep(20);
        }
        assert(path, "unshare made a network namespace");
        const bundle = await o.bundle((c) => {
          c.linux.namespaces = c.linux.namespaces.map((n: Json) =>
            n.type === "network" ? { type: "network", path } : n
          );
          c.process.args = sh("readlink /proc/self/ns/net");
        });
        const { stdout } = await o.runToEnd(bundle);
        assertEquals(stdout.trim(), Deno.readLinkSync(path), "the container is in the holder's network namespace");
      } finally {
        holder.kill("SIGKILL");
        await holder.status;
      }
    }),
);

Deno.test(
  named("oci create --no-pivot: move-root instead of pivot-root, and the command runs in the image", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = sh("ls /");
      });
      const names = (noPivot: boolean) =>
        ociSteps(readSpec(bundle), { preserved: 0, startFifo: 100, reportFifo: 101 }, {
          id: "steps",
          noPivot,
          cgroupHierarchies: [],
          cgroupVersion: 1,
        }).map((step) => step.name);
      assert(names(true).includes("move-root") && !names(true).includes("pivot-root"), "--no-pivot moves the root");
      assert(names(false).includes("pivot-root") && !names(false).includes("move-root"), "by default it pivots");
      const { stdout } = await o.runToEnd(bundle, ["--no-pivot"]);
      assertIncludes(stdout, "linuxrc\n", "the image's / is the container's", stdout);
    }),
);

// ---------------------------------------------------------------------------
// 3. kill

Deno.test(named("oci kill: default SIGTERM reaches a trap", SKIP), () =>
  withOci(async (o) => {
    const bundle = await o.bundle((c) => {
      c.process.args = sh(`trap 'echo TERM > /got; exit 0' TERM; echo up > /up; while true; do sleep 0.05; done`);
    });
    const rootfs = join(bundle, "rootfs");
    const id = o.newId();
    const { pid } = await o.launch(id, bundle);
    await waitFor("the trap to be set", () => exists(join(rootfs, "up")) || undefined);
    const kill = await o.gcr(["kill", id]);
    assertEquals(kill.code, 0, "kill ID exits 0", describe(kill));
    await o.waitStatus(id, "stopped");
    assertEquals(
      readTextOr(join(rootfs, "got")),
      "TERM\n",
      "the default signal is SIGTERM (the trap ran)",
      describe(kill),
    );
    assert(isDead(pid), "the process is gone");
  }));

Deno.test(
  named("oci kill: 9, KILL and SIGKILL stop a running sleep; kill of a stopped container fails", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = ["sleep", "1000"];
      });
      for (const signal of ["9", "KILL", "SIGKILL"]) {
        const id = o.newId();
        const { pid } = await o.launch(id, bundle);
        await sleep(100);
        assertEquals((await o.state(id)).status, "running", "running before the kill");
        const kill = await o.gcr(["kill", id, signal]);
        assertEquals(kill.code, 0, `kill ID ${signal} exits 0`, describe(kill));
        await o.waitStatus(id, "stopped");
        assert(isDead(pid), `kill ${signal}: the process is gone`);
        const late = await o.gcr(["kill", id, signal]);
        assert(late.code !== 0, "kill of a stopped container fails", describe(late));
        assertMatch(late.stderr, /not running/, "it says the container is not running", describe(late));
        await o.gcrOk(["delete", id]);
        o.assertGone(id, [pid]);
      }
    }),
);

Deno.test(
  named("oci kill --all: every process of the container gets the signal, not only the first", SKIP),
  () =>
    withOci(async (o) => {
      // As pid 1 of its namespace, sh ignores a SIGTERM it has no handler for; its children do not.
      const bundle = await o.bundle((c) => {
        c.process.args = sh("sleep 1000 & sleep 1000 & echo up > /up; wait");
      });
      const id = o.newId();
      const { pid } = await o.launch(id, bundle);
      await waitFor("the children", () => exists(join(bundle, "rootfs", "up")) || undefined);
      const ps = await o.gcrOk(["ps", "--format", "json", id]);
      const pids: number[] = JSON.parse(ps.stdout);
      assertEquals(pids.length, 3, "sh and two sleeps", describe(ps));
      assert(pids.includes(pid), "ps lists the init", describe(ps));
      o.pids.push(...pids);
      await o.gcrOk(["kill", id, "TERM"]);
      await sleep(300);
      assertEquals((await o.state(id)).status, "running", "TERM to the init alone changes nothing");
      assert(pids.every((p) => !isDead(p)), "all three alive after kill without --all");
      await o.gcrOk(["kill", "--all", id, "TERM"]);
      await o.waitStatus(id, "stopped");
      for (const p of pids) await waitFor(`process ${p} to end`, () => isDead(p) || undefined);
    }),
);

// ---------------------------------------------------------------------------
// 4. delete

Deno.test(
  named("oci delete: refuses a running container; --force kills and removes, also a created one", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = ["sleep", "1000"];
      });
      const id = o.newId();
      const { pid } = await o.launch(id, bundle);
      const cgroups = cgroupFoldersOf(pid);
      assert(cgroups.length > 0, "the container has cgroup folders of its own", readTextOr(`/proc/${pid}/cgroup`));
      const refused = await o.gcr(["delete", id]);
      assert(refused.code !== 0, "delete of a running container fails", describe(refused));
      assertMatch(refused.stderr, /running/, "it says why", describe(refused));
      assertIncludes(refused.stderr, "--force", "and how", describe(refused));
      assertEquals((await o.state(id)).status, "running", "still running after the refusal");
      assert(!isDead(pid), "the process is alive after the refusal");
      await o.gcrOk(["delete", "--force", id]);
      o.assertGone(id, [pid], cgroups);

      const never = o.newId();
      const { pid: waiting } = await o.createOk(never, bundle);
      const waitingCgroups = cgroupFoldersOf(waiting);
      assert(
        waitingCgroups.length > 0,
        "a created container has its cgroup folders",
        readTextOr(`/proc/${waiting}/cgroup`),
      );
      await o.gcrOk(["delete", "--force", never]);
      o.assertGone(never, [waiting], waitingCgroups);
    }),
);

Deno.test(
  named(
    "oci delete of a stopped container: ./gcr runs create's plan without Deno; a live one, and a trace, are Deno's",
    SKIP,
  ),
  () =>
    withOci(async (o) => {
      const quick = await o.bundle((c) => {
        c.process.args = sh("exit 3");
      });
      // ./gcr alone, no checkout beside it: anything that needs Deno fails there.
      const alone = join(o.folder("alone"), "gcr");
      Deno.copyFileSync(GCR, alone);
      Deno.chmodSync(alone, 0o755);

      const id = o.newId();
      const { pid } = await o.createOk(id, quick);
      const cgroups = cgroupFoldersOf(pid);
      assert(cgroups.length > 0, "the container has cgroup folders", readTextOr(`/proc/${pid}/cgroup`));
      assert(exists(join(o.root, id, "delete.plan")), "create left its delete plan");
      await o.gcrOk(["start", id]);
      await o.waitStatus(id, "stopped");
      const native = await run(alone, ["--root", o.root, "delete", "--force", id], { cwd: "/" });
      assertEquals(
        [native.code, native.stdout, native.stderr],
        [0, "", ""],
        "deleted by ./gcr alone",
        describe(native),
      );
      o.assertGone(id, [pid], cgroups);

      const sleeping = await o.bundle((c) => {
        c.process.args = ["sleep", "1000"];
      });
      const live = o.newId();
      const { pid: livePid } = await o.launch(live, sleeping);
      const liveCgroups = cgroupFoldersOf(livePid);
      const declined = await run(alone, ["--root", o.root, "delete", "--force", live], { cwd: "/" });
      assert(declined.code !== 0, "./gcr alone cannot delete a running container: Deno's", describe(declined));
      assertEquals((await o.state(live)).status, "running", "and left it running", describe(declined));
      for (const dir of liveCgroups) assert(exists(dir), `${dir} still there`);
      await o.gcrOk(["delete", "--force", live]);
      o.assertGone(live, [livePid], liveCgroups);

      const traced = o.newId();
      const { pid: tracedPid } = await o.createOk(traced, quick);
      const tracedCgroups = cgroupFoldersOf(tracedPid);
      await o.gcrOk(["start", traced]);
      await o.waitStatus(traced, "stopped");
      const ops = Deno.readTextFileSync(join(o.root, traced, "delete.plan")).split("\0").slice(1, -1);
      const traces = join(o.work, "traces");
      await o.gcrOk(["--trace-dir", traces, "delete", traced]);
      o.assertGone(traced, [tracedPid], tracedCgroups);
      const text = readTextOr(join(traces, `${traced}.trace`));
      assertIncludes(text, `run ${o.root}/${traced}/delete.plan (${ops.length} ops`, "Deno ran the plan", text);
      for (const op of ops.filter((op) => !op.startsWith("G"))) {
        const call = op.startsWith("F") ? "unlink" : "rmdir";
        assertIncludes(text, `    ${call}(${op.slice(1)}) = `, `the trace shows ${op}`, text);
      }
    }),
);

Deno.test(
  named(
    "oci start: ./gcr opens a created container's gate without Deno; a failed exec is said by Deno's start; a record written since create, and a trace, are Deno's",
    SKIP,
  ),
  () =>
    withOci(async (o) => {
      const alone = join(o.folder("alone"), "gcr");
      Deno.copyFileSync(GCR, alone);
      Deno.chmodSync(alone, 0o755);
      const sleeping = await o.bundle((c) => {
        c.process.args = sh("echo started-by-the-launcher; exec sleep 1000");
      });

      // ./gcr alone, no checkout beside it: anything that needs Deno fails there.
      const id = o.newId();
      const { created } = await o.createOk(id, sleeping);
      assert(exists(join(o.root, id, "start.plan")), "create left its start plan");
      const native = await run(alone, ["--root", o.root, "start", id], { cwd: "/" });
      assertEquals(
        [native.code, native.stdout, native.stderr],
        [0, "", ""],
        "started by ./gcr alone",
        describe(native),
      );
      const state = await o.state(id);
      assertEquals(state.status, "running", "gcr state: running", JSON.stringify(state));
      await waitFor("the container's output", () => readTextOr(created.outFile) || undefined);
      assertEquals(readTextOr(created.outFile), "started-by-the-launcher\n", "the container's command ran");
      const again = await o.gcr(["start", id]);
      assertEquals(again.code, 1, "a second start fails", describe(again));
      assertIncludes(again.stderr, "cannot start an already running container", "in runc's words", describe(again));
      await o.gcrOk(["delete", "--force", id]);
      o.assertGone(id);

      // A command gone between create and start: the exec fails in the container.
      const bundle = await o.bundle((c) => {
        c.process.args = ["/bin/gone"];
      });
      const gone = join(bundle, "rootfs", "bin", "gone");
      Deno.copyFileSync(join(bundle, "rootfs", "bin", "busybox"), gone);
      const failing = o.newId();
      await o.createOk(failing, bundle);
      Deno.removeSync(gone);
      const log = join(o.work, "start.log");
      await o.gcrOk(["--log", log, "start", failing]);
      assertIncludes(readTextOr(log), 'exec: "/bin/gone": no such file or directory', "said in --log", readTextOr(log));
      assert(!exists(join(o.root, failing, "start.report")), "Deno's start took the launcher's report");
      await o.waitStatus(failing, "stopped");
      await o.gcrOk(["delete", failing]);
      o.assertGone(failing);

      // A record written since create (update): the plan is gone, and the start is Deno's.
      const updated = o.newId();
      await o.createOk(updated, sleeping);
      await o.gcrOk(["update", "--memory", "64m", updated]);
      assert(!exists(join(o.root, updated, "start.plan")), "the record's write removed the start plan");
      const declined = await run(alone, ["--root", o.root, "start", updated], { cwd: "/" });
      assert(declined.code !== 0, "./gcr alone cannot start it: Deno's", describe(declined));
      assertEquals((await o.state(updated)).status, "created", "and left it created", describe(declined));
      await o.gcrOk(["start", updated]);
      assertEquals((await o.state(updated)).status, "running", "Deno's start started it");
      await o.gcrOk(["delete", "--force", updated]);

      // --trace-dir: Deno's start, whose trace shows each call ./gcr makes.
      const traced = o.newId();
      await o.createOk(traced, sleeping);
      const traces = join(o.work, "traces");
      await o.gcrOk(["--trace-dir", traces, "start", traced]);
      const text = readTextOr(join(traces, `${traced}.trace`));
      const run_ = join(o.root, traced);
      for (
        const call of [
          `write(${run_}/start.fifo, one byte) = 1`,
          `unlink(${run_}/start.fifo) = 0`,
          `open(${run_}/started, O_CREAT|O_TRUNC) = 0`,
          `read(${run_}/report.fifo) to its end: sh exec'd`,
        ]
      ) assertIncludes(text, call, "the trace shows it", text);
      assertEquals((await o.state(traced)).status, "running", "started");
      await o.gcrOk(["delete", "--force", traced]);
    }),
);

// ---------------------------------------------------------------------------
// 5. config.json honoured

Deno.test(named("oci config: hostname, env, cwd, user and groups", SKIP), () =>
  withOci(async (o) => {
    const bundle = await o.bundle((c) => {
      c.hostname = "oci-box";
      c.process.env.push("GREETING=hello there");
      c.process.cwd = "/tmp";
      c.process.user = { uid: 1000, gid: 1001, additionalGids: [1002] };
      c.process.capabilities.inheritable = [];
      c.process.capabilities.ambient = [];
      c.process.args = sh('hostname; echo "$GREETING"; pwd; id -u; id -g; id -G');
    });
    const { stdout, stderr } = await o.runToEnd(bundle);
    assertEquals(
      lines(stdout),
      ["oci-box", "hello there", "/tmp", "1000", "1001", "1001 1002"],
      "what the process saw",
      stderr,
    );
  }));

Deno.test(named("oci config: process.capabilities are the process's effective set", SKIP), () =>
  withOci(async (o) => {
    const caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]; // bits 0, 5, 13
    const bundle = await o.bundle((c) => {
      c.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] };
      c.process.args = sh("grep ^Cap /proc/self/status");
    });
    const { stdout, stderr } = await o.runToEnd(bundle);
    const mask = ((1 << 0) | (1 << 5) | (1 << 13)).toString(16).padStart(16, "0");
    assertMatch(stdout, new RegExp(`^CapEff:\\s+${mask}$`, "m"), "CapEff", stdout + stderr);
    assertMatch(stdout, new RegExp(`^CapPrm:\\s+${mask}$`, "m"), "CapPrm", stdout);
    assertMatch(stdout, new RegExp(`^CapBnd:\\s+${mask}$`, "m"), "CapBnd", stdout);
  }));

/** config.json's capability sets, by name, and the /proc/<pid>/status field that shows each. */
const CAP_FIELDS = {
  bounding: "CapBnd",
  effective: "CapEff",
  permitted: "CapPrm",
  inheritable: "CapInh",
  ambient: "CapAmb",
} as const;
type CapSets = Record<keyof typeof CAP_FIELDS, string[]>;

/** The five sets as /proc/<pid>/status shows them (16 hex digits each), from `status`'s Cap lines. */
function shownCapabilities(status: string): Record<keyof typeof CAP_FIELDS, string> {
  const entries = Object.entries(CAP_FIELDS).map((
    [set, field],
  ) => [set, status.match(new RegExp(`^${field}:\\s*([0-9a-f]{16})$`, "m"))?.[1] ?? `no ${field} line`]);
  return Object.fromEntries(entries);
}

/** What /proc/<pid>/status should show for `sets` (config.json's names). */
function capabilityMasks(sets: CapSets): Record<keyof typeof CAP_FIELDS, string> {
  const entries = Object.entries(sets).map((
    [set, names],
  ) => [set, capabilityMask(names.map(capabilityNumber)).toString(16).padStart(16, "0")]);
  return Object.fromEntries(entries);
}

Deno.test(
  named("oci config: process.capabilities sets all five sets as config.json says, for uid 0", SKIP),
  () =>
    withOci(async (o) => {
      // For uid 0 the kernel gives an exec'd program the bounding and
      // inheritable sets as permitted and effective (root's file sets count
      // as full), so config.json's effective and permitted are its bounding
      // set here; the inheritable and ambient sets are smaller, each its own.
      const sets: CapSets = {
        bounding: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW"],
        effective: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW"],
        permitted: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW"],
        inheritable: ["CAP_CHOWN", "CAP_KILL"],
        ambient: ["CAP_KILL"],
      };
      const bundle = await o.bundle((c) => {
        c.process.capabilities = sets;
        c.process.args = sh("grep ^Cap /proc/self/status");
      });
      const { stdout, stderr } = await o.runToEnd(bundle);
      assertEquals(shownCapabilities(stdout), capabilityMasks(sets), "the five sets", stdout + stderr);
    }),
);

Deno.test(
  named(
    "oci config: process.capabilities for uid 1000: bounding and inheritable as asked, ambient ones effective and usable",
    SKIP,
  ),
  () =>
    withOci(async (o) => {
      // For another uid the kernel gives an exec'd program only its ambient
      // set as permitted and effective: config.json's match it here.
      const sets: CapSets = {
        bounding: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        effective: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        permitted: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        inheritable: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        ambient: ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
      };
      // /dev/shm is a tmpfs every user may write (umoci's config mounts it
      // mode=1777); giving a file away to root takes CAP_CHOWN.
      const script = "id -u; grep ^Cap /proc/self/status; touch /dev/shm/f; chown 0 /dev/shm/f; echo chown=$?";
      const bundle = await o.bundle((c) => {
        c.process.user = { uid: 1000, gid: 1000 };
        c.process.capabilities = sets;
        c.process.args = sh(script);
      });
      const { stdout, stderr } = await o.runToEnd(bundle);
      assertEquals(lines(stdout)[0], "1000", "the process runs as uid 1000", stdout + stderr);
      assertEquals(shownCapabilities(stdout), capabilityMasks(sets), "the five sets", stdout + stderr);
      assertMatch(stdout, /^chown=0$/m, "CAP_CHOWN, ambient, works for uid 1000", stdout + stderr);

      // Control: the same but with no ambient set, uid 1000 execs with no
      // capabilities at all (as Docker's non-root users do), and chown fails.
      const without = await o.bundle((c) => {
        c.process.user = { uid: 1000, gid: 1000 };
        c.process.capabilities = { ...sets, ambient: [] };
        c.process.args = sh(script);
      });
      const control = await o.runToEnd(without);
      assertEquals(
        shownCapabilities(control.stdout),
        capabilityMasks({ ...sets, effective: [], permitted: [], ambient: [] }),
        "no ambient set: nothing effective or permitted after the exec",
        control.stdout + control.stderr,
      );
      assertMatch(control.stdout, /^chown=1$/m, "chown fails without CAP_CHOWN", control.stdout + control.stderr);

      // The same in a user namespace of the container's own, where the
      // process starts as its root (every capability, over its namespace).
      const mapped = await o.bundle((c) => {
        c.linux.namespaces = [...c.linux.namespaces.filter((n: Json) => n.type !== "user"), { type: "user" }];
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.process.user = { uid: 1000, gid: 1000 };
        c.process.capabilities = sets;
        c.process.args = sh(script);
      });
      // The container's root is host uid 100000: as with runc, the bundle must be reachable by it.
      Deno.chmodSync(o.work, 0o755);
      Deno.chmodSync(mapped, 0o755);
      const inUserns = await o.runToEnd(mapped);
      const both = inUserns.stdout + inUserns.stderr;
      assertEquals(lines(inUserns.stdout)[0], "1000", "uid 1000 in the user namespace", both);
      assertEquals(
        shownCapabilities(inUserns.stdout),
        capabilityMasks(sets),
        "the five sets in a user namespace",
        both,
      );
      assertMatch(inUserns.stdout, /^chown=0$/m, "CAP_CHOWN, ambient, works there too", both);
    }),
);

Deno.test(
  named(
    "oci config: capability sets the kernel would refuse are refused by field, in one line, before anything runs (uid 0: an unraisable ambient one left out, as runc)",
    SKIP,
  ),
  () =>
    withOci(async (o) => {
      const base: CapSets = {
        bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"],
        effective: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"],
        permitted: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"],
        inheritable: ["CAP_CHOWN"],
        ambient: ["CAP_CHOWN"],
      };
      // An ambient capability that cannot be raised is refused where the
      // process would exec without it (a non-zero uid); for uid 0 see below.
      const ALL = [0, 1000];
      const cases: [Partial<CapSets>, RegExp, number[]][] = [
        [
          { ambient: ["CAP_CHOWN", "CAP_NET_ADMIN"] },
          /^gcr: config\.json: process\.capabilities\.ambient holds CAP_NET_ADMIN, which process\.capabilities\.inheritable lacks: .*uid 1000 would exec without it$/m,
          [1000],
        ],
        [
          { permitted: ["CAP_KILL"], ambient: ["CAP_CHOWN"] },
          /^gcr: config\.json: process\.capabilities\.effective holds CAP_CHOWN, which process\.capabilities\.permitted lacks: /,
          ALL,
        ],
        [
          { permitted: ["CAP_KILL"], effective: [], ambient: ["CAP_CHOWN"] },
          /^gcr: config\.json: process\.capabilities\.ambient holds CAP_CHOWN, which process\.capabilities\.permitted lacks: /,
          [1000],
        ],
        [
          { inheritable: ["CAP_SYS_ADMIN"], ambient: [] },
          /^gcr: config\.json: process\.capabilities\.inheritable holds CAP_SYS_ADMIN, which process\.capabilities\.bounding lacks: /,
          ALL,
        ],
        // Names gcr does not know are the spec reader's, by item.
        [
          { ambient: ["CAP_FLY"] },
          /^gcr: config\.json: process\.capabilities\.ambient\[0\] is not a capability gcr knows: "CAP_FLY"$/m,
          ALL,
        ],
      ];
      for (const [change, message, uids] of cases) {
        for (const uid of uids) {
          const bundle = await o.bundle((c) => {
            c.process.user = { uid, gid: uid };
            c.process.capabilities = { ...base, ...change };
            c.process.args = sh("echo ran > /ran");
          });
          const id = o.newId();
          const refused = await o.create(id, bundle);
          const what = `${JSON.stringify(change)} for uid ${uid}`;
          assert(refused.code !== 0, `${what} is refused`, describe(refused));
          assertEquals(lines(refused.stderr).length, 1, `${what}: one line`, describe(refused));
          assertMatch(refused.stderr, message, `${what}: the field and why`, describe(refused));
          assert(!exists(join(bundle, "rootfs", "ran")), `${what}: nothing ran`);
          o.assertGone(id);
        }
      }

      // uid 0, as runc (which only warns; Debian's `runc spec` asks for
      // ambient capabilities with no inheritable set): the process starts
      // without the ambient capability it cannot have, and nothing else
      // changes, since root's exec gets its bounding and inheritable sets.
      const unraisable = { ...base, ambient: ["CAP_CHOWN", "CAP_NET_ADMIN"] };
      const root = await o.bundle((c) => {
        c.process.capabilities = unraisable;
        c.process.args = sh("grep ^Cap /proc/self/status");
      });
      const started = await o.runToEnd(root);
      assertEquals(
        shownCapabilities(started.stdout),
        capabilityMasks({ ...unraisable, ambient: ["CAP_CHOWN"] }),
        "uid 0: started without the ambient CAP_NET_ADMIN",
        started.stdout + started.stderr,
      );
    }),
);

Deno.test(
  named("oci config: process.noNewPrivileges, and uid/gid mappings of a new user namespace", SKIP),
  () =>
    withOci(async (o) => {
      for (const noNewPrivileges of [true, false]) {
        const bundle = await o.bundle((c) => {
          c.process.noNewPrivileges = noNewPrivileges;
          c.process.args = sh("grep ^NoNewPrivs /proc/self/status");
        });
        const { stdout } = await o.runToEnd(bundle);
        assertMatch(
          stdout,
          new RegExp(`^NoNewPrivs:\\s+${noNewPrivileges ? 1 : 0}$`, "m"),
          `noNewPrivileges ${noNewPrivileges}`,
        );
      }
      const mapped = await o.bundle((c) => {
        c.linux.namespaces = [...c.linux.namespaces.filter((n: Json) => n.type !== "user"), { type: "user" }];
        c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        c.process.args = sh("cat /proc/self/uid_map /proc/self/gid_map; id -u");
      });
      // The container's root is host uid 100000 now: as with runc, the bundle must be reachable by it.
      Deno.chmodSync(o.work, 0o755);
      Deno.chmodSync(mapped, 0o755);
      const { stdout, stderr } = await o.runToEnd(mapped);
      assertEquals(
        stdout.split("\n").map((line) => line.trim().split(/\s+/).join(" ")).filter(Boolean),
        ["0 100000 65536", "0 100000 65536", "0"],
        "the maps config.json gives, and root inside",
        stdout + stderr,
      );
    }),
);

Deno.test(named("oci config: rlimits (NOFILE soft and hard)", SKIP), () =>
  withOci(async (o) => {
    const bundle = await o.bundle((c) => {
      c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 123, hard: 456 }];
      c.process.args = sh("ulimit -n; grep 'Max open files' /proc/self/limits");
    });
    const { stdout, stderr } = await o.runToEnd(bundle);
    assertMatch(stdout, /^123\nMax open files\s+123\s+456\s+files/, "soft and hard NOFILE", stdout + stderr);
  }));

Deno.test(
  named("oci without namespaces: the container shares every namespace, chroots, and delete detaches its mounts", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.linux.namespaces = [];
        delete c.hostname;
        c.linux.maskedPaths = [];
        c.linux.readonlyPaths = [];
        c.process.args = sh(
          "ls /proc/self/ns/ | while read n; do echo $n $(readlink /proc/self/ns/$n); done; ls -d /bin/busybox",
        );
      });
      const id = o.newId();
      // In a mount namespace of the test's own: the container's mounts are made in whatever namespace gcr runs in.
      const script = [
        'gcr() { "$GCR" --root "$ROOT" "$@"; }',
        'gcr create --bundle "$BUNDLE" "$ID" >"$OUT" 2>&1 || exit 1',
        'echo "during: $(grep -c " $BUNDLE/rootfs" /proc/self/mountinfo)"',
        'gcr start "$ID"',
        'while [ "$(gcr state "$ID" | grep -o \'"status": "[a-z]*"\')" != \'"status": "stopped"\' ]; do sleep 0.05; done',
        'gcr delete "$ID"',
        'echo "after: $(grep -c " $BUNDLE/rootfs" /proc/self/mountinfo)"',
        "for n in $(ls /proc/self/ns/); do echo $n $(readlink /proc/self/ns/$n); done",
      ].join("\n");
      const out = join(o.work, "no-ns.out");
      const result = await run("unshare", ["-m", "--propagation", "private", "sh", "-c", script], {
        cwd: REPO,
        env: { GCR, ROOT: o.root, BUNDLE: bundle, ID: id, OUT: out, GCR_STATE: STATE_DIR },
      });
      assertEquals(result.code, 0, "create, start, delete", describe(result) + readTextOr(out));
      const [during, after, ...ours] = lines(result.stdout);
      assert(Number(during!.split(" ")[1]) >= 2, "the rootfs and its mounts, in the namespace gcr ran in", during);
      assertEquals(after, "after: 0", "delete detached them all");
      const theirs = lines(readTextOr(out));
      assertEquals(theirs.at(-1), "/bin/busybox", "the command saw the image's root", readTextOr(out));
      assertEquals(theirs.slice(0, -1), ours, "every namespace is the caller's", readTextOr(out));

      const masked = await o.bundle((c) => {
        c.linux.namespaces = [{ type: "pid" }];
        delete c.hostname;
        c.linux.maskedPaths = ["/proc/kcore"];
      });
      const refusedId = o.newId();
      const refused = await o.create(refusedId, masked);
      assert(refused.code !== 0, "refused", describe(refused));
      assertEquals(
        refused.stderr,
        "gcr: config.json: linux.maskedPaths needs a mount namespace (it would change the host's own paths)\n",
      );
      o.assertGone(refusedId);
    }),
);

Deno.test(
  named("oci config: process.oomScoreAdj is applied; a lowering the kernel refuses is a warning in --log", SKIP),
  () =>
    withOci(async (o) => {
      const show = sh("cat /proc/self/oom_score_adj");
      const raised = await o.bundle((c) => {
        c.process.oomScoreAdj = 500;
        c.process.args = show;
      });
      const r = await o.runToEnd(raised);
      assertEquals(lines(r.stdout), ["500"], "raised: anyone may", r.stderr);

      // Engines ask for -998 on every pod sandbox; lowering needs CAP_SYS_RESOURCE.
      const effective = BigInt(`0x${readTextOr("/proc/self/status").match(/^CapEff:\s*(\w+)/m)![1]}`);
      const canLower = ((effective >> 24n) & 1n) === 1n;
      const lowered = await o.bundle((c) => {
        c.process.oomScoreAdj = -998;
        c.process.args = show;
      });
      const log = join(o.work, "oom.log");
      const id = o.newId();
      const created = await o.toFiles(["--log", log, "--log-format", "json", "create", "--bundle", lowered, id]);
      assertEquals(created.code, 0, "create succeeds either way", describe(created));
      await o.gcrOk(["start", id]);
      await o.waitStatus(id, "stopped");
      await o.gcrOk(["delete", id]);
      const seen = lines(readTextOr(created.outFile));
      if (canLower) {
        assertEquals(seen, ["-998"], "lowered: gcr holds CAP_SYS_RESOURCE here");
        assertEquals(readTextOr(log), "", "nothing to warn about");
      } else {
        const own = readTextOr("/proc/self/oom_score_adj").trim();
        assertEquals(seen, [own], "the container keeps its parent's score");
        const entries = lines(readTextOr(log)).map((line) => JSON.parse(line));
        assertEquals(entries.map((e) => e.level), ["warning"], "one warning", readTextOr(log));
        assertMatch(entries[0].msg, /^process\.oomScoreAdj: -998 not applied \(write \/proc\/<pid>\/oom_score_adj: /);
      }
    }),
);

Deno.test(
  named("oci config: linux.devices get exactly their fileMode and owner; the umask is config.json's, else 0022", SKIP),
  () =>
    withOci(async (o) => {
      const script = "stat -c '%a %F %t:%T %u:%g' /dev/test-null /dev/test-fifo; umask";
      const devices = [
        { path: "/dev/test-null", type: "c", major: 1, minor: 3, fileMode: 0o660, uid: 1000, gid: 1001 },
        { path: "/dev/test-fifo", type: "p", major: 0, minor: 0, fileMode: 0o606 },
      ];
      const asked = await o.bundle((c) => {
        c.linux.devices = devices;
        c.process.user.umask = 0o027;
        c.process.args = sh(script);
      });
      const withUmask = await o.runToEnd(asked);
      assertEquals(
        lines(withUmask.stdout),
        ["660 character special file 1:3 1000:1001", "606 fifo 0:0 0:0", "0027"],
        "modes as asked, not cut by gcr's umask; config.json's umask",
        withUmask.stderr,
      );
      const plain = await o.bundle((c) => {
        c.linux.devices = devices;
        c.process.args = sh("umask");
      });
      const defaulted = await o.runToEnd(plain);
      assertEquals(lines(defaulted.stdout), ["0022"], "runc's default umask", defaulted.stderr);
    }),
);

Deno.test(
  named("oci config: maskedPaths and readonlyPaths in the image, nested ones too, through its own symlinks", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.linux.maskedPaths = ["/secret", "/secret/inner", "/secret-file", "/via-link", "/absent"];
        c.linux.readonlyPaths = ["/frozen", "/frozen/deeper", "/frozen-file"];
        c.process.args = sh([
          "ls -A /secret | wc -l",
          "cat /secret-file | wc -c",
          "ls -A /elsewhere | wc -l",
          "(echo x > /frozen/deeper/f) 2>/dev/null && echo frozen-writable || echo frozen-ro",
          "(echo x > /frozen-file) 2>/dev/null && echo file-writable || echo file-ro",
          "cat /frozen-file",
          "echo x > /elsewhere-ok && echo root-writable",
        ].join("; "));
      });
      const rootfs = join(bundle, "rootfs");
      Deno.mkdirSync(join(rootfs, "secret", "inner"), { recursive: true });
      Deno.writeTextFileSync(join(rootfs, "secret", "inner", "key"), "secret\n");
      Deno.writeTextFileSync(join(rootfs, "secret-file"), "secret\n");
      Deno.mkdirSync(join(rootfs, "elsewhere"));
      Deno.writeTextFileSync(join(rootfs, "elsewhere", "key"), "secret\n");
      // An absolute symlink of the image's: resolved in the container's root, not the host's.
      Deno.symlinkSync("/elsewhere", join(rootfs, "via-link"));
      Deno.mkdirSync(join(rootfs, "frozen", "deeper"), { recursive: true });
      Deno.writeTextFileSync(join(rootfs, "frozen-file"), "as it was\n");
      const { stdout, stderr } = await o.runToEnd(bundle);
      assertEquals(
        lines(stdout).map((l) => l.trim()),
        ["0", "0", "0", "frozen-ro", "file-ro", "as it was", "root-writable"],
        "masked: empty; read-only: unwritable; the rest as it was",
        stderr,
      );
      assertEquals(readTextOr(join(rootfs, "secret", "inner", "key")), "secret\n", "masking hides, never changes");
    }),
);

Deno.test(
  named("oci config: root.readonly, ro and rw binds, maskedPaths, readonlyPaths", SKIP),
  () =>
    withOci(async (o) => {
      const ro = o.folder("ro-src");
      const rw = o.folder("rw-src");
      Deno.writeTextFileSync(join(ro, "hostfile"), "from the host\n");
      const bundle = await o.bundle((c) => {
        c.root.readonly = true;
        c.mounts.push(
          { destination: "/ro", type: "bind", source: ro, options: ["bind", "ro"] },
          { destination: "/rw", type: "bind", source: rw, options: ["rbind", "rw"] },
        );
        c.linux.maskedPaths = ["/proc/kcore"];
        c.linux.readonlyPaths = ["/proc/sys"];
        c.process.args = sh([
          "touch /x 2>/dev/null && echo root-writable || echo root-ro",
          "cat /ro/hostfile",
          "touch /ro/new 2>/dev/null && echo ro-writable || echo ro-refused",
          "echo written > /rw/new && echo rw-ok",
          "head -c 16 /proc/kcore | wc -c",
          "(echo probe > /proc/sys/kernel/hostname) 2>/dev/null && echo procsys-writable || echo procsys-ro",
          "hostname",
        ].join("; "));
      });
      const { stdout, stderr } = await o.runToEnd(bundle);
      assertEquals(
        lines(stdout).map((l) => l.trim()),
        ["root-ro", "from the host", "ro-refused", "rw-ok", "0", "procsys-ro", "umoci-default"],
        "what the process saw",
        stderr,
      );
      assertEquals(readTextOr(join(rw, "new")), "written\n", "the rw bind wrote to the host folder");
      assert(!exists(join(ro, "new")), "nothing was written through the ro bind");
      assert(!exists(join(bundle, "rootfs", "x")), "nothing was written to the read-only root");
    }),
);

Deno.test(named("oci config: a network sysctl is set in the container only", SKIP), () =>
  withOci(async (o) => {
    const hostFile = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    const before = readTextOr(hostFile);
    const value = before.trim() === "555" ? "556" : "555";
    const bundle = await o.bundle((c) => {
      assert(c.linux.namespaces.some((n: Json) => n.type === "network"), "umoci's config has a network namespace");
      c.linux.sysctl = { "net.ipv4.ip_unprivileged_port_start": value };
      c.process.args = sh(`cat ${hostFile}`);
    });
    const { stdout, stderr } = await o.runToEnd(bundle);
    assertEquals(stdout, `${value}\n`, "the container sees its sysctl", stderr);
    assertEquals(readTextOr(hostFile), before, "the host's value is unchanged");
  }));

Deno.test(
  named("oci config: a host sysctl (kernel.panic) is refused by name, nothing left behind", SKIP),
  () =>
    withOci(async (o) => {
      const before = readTextOr("/proc/sys/kernel/panic");
      const bundle = await o.bundle((c) => {
        c.linux.sysctl = { "kernel.panic": "17" };
        c.process.args = ["sleep", "1000"];
      });
      const id = o.newId();
      const created = await o.create(id, bundle);
      assert(created.code !== 0, "create fails", describe(created));
      assertIncludes(created.stderr, "linux.sysctl.kernel.panic", "the message names the field", describe(created));
      assertEquals(readTextOr("/proc/sys/kernel/panic"), before, "the host's kernel.panic is unchanged");
      o.assertGone(id);
      const state = await o.gcr(["state", id]);
      assert(state.code !== 0, "no container to show", describe(state));
    }),
);

// ---------------------------------------------------------------------------
// 6. Refusals and bad bundles

Deno.test(
  named("oci refusals: unsupported fields named, nothing left; bad bundles give one line", SKIP),
  () =>
    withOci(async (o) => {
      const cases: [string, (c: Json) => void][] = [
        ["linux.intelRdt", (c) => (c.linux.intelRdt = { closID: "gcr" })],
        // tmpcopyup over a folder with files: gcr would have to copy them (over an empty one it is a plain tmpfs).
        ["mounts[", (c) =>
          c.mounts.push({ destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup"] })],
      ];
      for (const [field, edit] of cases) {
        const bundle = await o.bundle((c) => {
          c.process.args = ["sleep", "1000"];
          edit(c);
        });
        const id = o.newId();
        const created = await o.create(id, bundle);
        assert(created.code !== 0, `create with ${field} fails`, describe(created));
        assertIncludes(created.stderr, field, "the message names the field", describe(created));
        o.assertGone(id);
      }

      // --systemd-cgroup is accepted, but a systemd unit path cannot be honoured: gcr writes cgroupfs folders.
      const unitBundle = await o.bundle((c) => {
        c.process.args = ["true"];
        c.linux.cgroupsPath = "system.slice:gcr:unit-test";
      });
      const unit = o.newId();
      const unitCreate = await o.toFiles(["--systemd-cgroup", "create", "--bundle", unitBundle, unit]);
      assert(unitCreate.code !== 0, "a systemd cgroupsPath is refused", describe(unitCreate));
      assertIncludes(
        unitCreate.stderr,
        "system.slice:gcr:unit-test",
        "the message names the path",
        describe(unitCreate),
      );
      o.assertGone(unit);

      const missing = o.newId();
      const noBundle = await o.create(missing, join(o.work, "no-such-bundle"));
      assert(noBundle.code !== 0, "create of a missing bundle fails", describe(noBundle));
      assertEquals(lines(noBundle.stderr).length, 1, "one line", describe(noBundle));
      assertIncludes(noBundle.stderr, "config.json", "it names config.json", describe(noBundle));
      o.assertGone(missing);

      const badDir = o.folder("bad-json");
      Deno.writeTextFileSync(join(badDir, "config.json"), '{"ociVersion": "1.0.2", "process": {');
      const bad = o.newId();
      const badJson = await o.create(bad, badDir);
      assert(badJson.code !== 0, "create with invalid JSON fails", describe(badJson));
      assertEquals(lines(badJson.stderr).length, 1, "one line", describe(badJson));
      assertMatch(badJson.stderr, /JSON/, "it says the JSON is invalid", describe(badJson));
      o.assertGone(bad);
    }),
);

// ---------------------------------------------------------------------------
// 7. linux.resources at a cgroupsPath

Deno.test(
  named(
    "oci resources: memory (OOM killer off) and pids limits at linux.cgroupsPath; delete removes the folders",
    SKIP,
  ),
  () =>
    withOci(async (o) => {
      const top = `gcr-oci-test-${crypto.randomUUID().slice(0, 8)}`;
      const limit = 64 * 1024 * 1024;
      const bundle = await o.bundle((c) => {
        c.linux.cgroupsPath = `/${top}/c1`;
        c.linux.resources = { ...c.linux.resources, memory: { limit, disableOOMKiller: true }, pids: { limit: 50 } };
        c.process.args = ["sleep", "1000"];
      });
      const id = o.newId();
      try {
        const { pid } = await o.launch(id, bundle);
        const cgroup = readTextOr(`/proc/${pid}/cgroup`);
        assertMatch(cgroup, new RegExp(`^\\d+:memory:/${top}/c1$`, "m"), "in the memory cgroup", cgroup);
        assertMatch(cgroup, new RegExp(`^\\d+:pids:/${top}/c1$`, "m"), "in the pids cgroup", cgroup);
        assertEquals(
          readTextOr(`/sys/fs/cgroup/memory/${top}/c1/memory.limit_in_bytes`).trim(),
          String(limit),
          "memory",
        );
        assertEquals(readTextOr(`/sys/fs/cgroup/pids/${top}/c1/pids.max`).trim(), "50", "pids.max");
        assertMatch(
          readTextOr(`/sys/fs/cgroup/memory/${top}/c1/memory.oom_control`),
          /^oom_kill_disable 1$/m,
          "disableOOMKiller: the tasks wait at the limit instead of being killed",
        );
        await o.gcrOk(["delete", "--force", id]);
        o.assertGone(id, [pid]);
        for (const entry of Deno.readDirSync("/sys/fs/cgroup")) {
          assert(!exists(`/sys/fs/cgroup/${entry.name}/${top}`), `gcr's /${top} in ${entry.name} should be gone`);
        }
      } finally {
        await o.gcr(["delete", "--force", id]);
        for (const entry of Deno.readDirSync("/sys/fs/cgroup")) {
          for (const dir of [`/sys/fs/cgroup/${entry.name}/${top}/c1`, `/sys/fs/cgroup/${entry.name}/${top}`]) {
            try {
              Deno.removeSync(dir);
            } catch { /* not there */ }
          }
        }
      }
    }),
);

// ---------------------------------------------------------------------------
// 8. pause / resume

Deno.test(
  named("oci pause/resume: a counting loop stops while paused and goes on after resume", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = sh(
          "i=0; while true; do i=$((i+1)); echo $i > /count.tmp; mv /count.tmp /count; sleep 0.02; done",
        );
      });
      const file = join(bundle, "rootfs", "count");
      const count = () => Number(readTextOr(file).trim() || "0");
      const id = o.newId();
      await o.launch(id, bundle);
      await waitFor("the loop to count", () => count() > 3 || undefined);
      await o.gcrOk(["pause", id]);
      assertEquals((await o.state(id)).status, "paused", "state while paused");
      await sleep(100);
      const frozen = count();
      await sleep(600);
      assertEquals(count(), frozen, "the count does not move while paused");
      const twice = await o.gcr(["pause", id]);
      assert(twice.code !== 0, "pausing a paused container fails", describe(twice));
      await o.gcrOk(["resume", id]);
      assertEquals((await o.state(id)).status, "running", "state after resume");
      await waitFor("the count to move again", () => count() > frozen + 3 || undefined);
      await o.gcrOk(["delete", "--force", id]);
    }),
);

// ---------------------------------------------------------------------------
// 9. exec --process

const UID_AND_MAP = "id -u; cat /proc/self/uid_map";
const words = (text: string) => text.trim().split(/\s+/).join(" ");

Deno.test(
  named(
    "oci exec --process as root and as uid 1000, and exec ID CMD: without a user namespace, and with a new one",
    SKIP,
  ),
  () =>
    withOci(async (o) => {
      // uid_map says which user namespace the process is in: `id -u` alone reads the same in either.
      const kinds: [string, string, (c: Json) => void][] = [
        ["no user namespace", "0 0 4294967295", () => {}],
        ["a new user namespace", "0 100000 65536", (c) => {
          c.linux.namespaces.push({ type: "user" });
          c.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
          c.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
        }],
      ];
      for (const [kind, map, edit] of kinds) {
        const bundle = await o.bundle((c) => {
          c.process.args = ["sleep", "1000"];
          edit(c);
        });
        // The root of a new namespace is host uid 100000: as with runc, the bundle must be reachable by it.
        Deno.chmodSync(o.work, 0o755);
        Deno.chmodSync(bundle, 0o755);
        const id = o.newId();
        await o.launch(id, bundle);
        for (const uid of [0, 1000]) {
          const processFile = join(o.work, `process-${uid}.json`);
          Deno.writeTextFileSync(
            processFile,
            JSON.stringify({ user: { uid, gid: uid }, args: ["sh", "-c", UID_AND_MAP], env: [PATH_ENV], cwd: "/" }),
          );
          const exec = await o.gcr(["exec", "--process", processFile, id]);
          assertEquals(exec.code, 0, `${kind}: exec as uid ${uid}`, describe(exec));
          assertEquals(
            words(exec.stdout),
            `${uid} ${map}`,
            `${kind}: the process's uid and user namespace`,
            describe(exec),
          );
        }
        // runc's form without a process file: the command after the id, as uid 0.
        const plain = await o.gcr(["exec", id, "sh", "-c", UID_AND_MAP]);
        assertEquals(plain.code, 0, `${kind}: exec ID CMD`, describe(plain));
        assertEquals(words(plain.stdout), `0 ${map}`, `${kind}: exec ID CMD's uid and user namespace`, describe(plain));
        const status = await o.gcr(["exec", id, "sh", "-c", "exit 7"]);
        assertEquals(status.code, 7, `${kind}: exec ID CMD's exit status`, describe(status));
        // runc's flags for it: --user uid[:gid] and --env, each added to the container's environment.
        const flagged = await o.gcr([
          "exec",
          "-u",
          "1000:1001",
          "-e",
          "A=1",
          "--env",
          "B=2",
          id,
          "sh",
          "-c",
          'id -u; id -g; echo "$A$B"',
        ]);
        assertEquals([flagged.code, flagged.stdout], [0, "1000\n1001\n12\n"], `${kind}: exec -u -e`, describe(flagged));
        // --tty needs a console socket to give the terminal to; an exec's chain has no room for --preserve-fds.
        for (const bad of [["-u", "nobody"], ["-e", "NOVALUE"], ["-t"], ["--preserve-fds", "1"]]) {
          const refused = await o.gcr(["exec", ...bad, id, "true"]);
          assertNotEquals(refused.code, 0, `${kind}: exec ${bad.join(" ")} is refused`, describe(refused));
          assertEquals(lines(refused.stderr).length, 1, "in one line", describe(refused));
        }
        await o.gcrOk(["delete", "--force", id]);
      }
    }),
);

Deno.test(
  named("oci exec --process: args, env, cwd, exit status; --detach --pid-file in the container", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = ["sleep", "1000"];
      });
      const id = o.newId();
      const { pid } = await o.launch(id, bundle);
      const processFile = join(o.work, "process.json");
      Deno.writeTextFileSync(
        processFile,
        JSON.stringify({
          terminal: false,
          user: { uid: 0, gid: 0 },
          args: ["sh", "-c", 'echo "$GREETING"; pwd; exit 7'],
          env: [PATH_ENV, "GREETING=from exec"],
          cwd: "/tmp",
        }),
      );
      const exec = await o.gcr(["exec", "--process", processFile, id]);
      assertEquals(exec.code, 7, "the exit status passes through", describe(exec));
      assertEquals(exec.stdout, "from exec\n/tmp\n", "env and cwd", describe(exec));

      Deno.writeTextFileSync(
        processFile,
        JSON.stringify({
          terminal: false,
          user: { uid: 0, gid: 0 },
          args: ["sleep", "999"],
          env: [PATH_ENV],
          cwd: "/",
        }),
      );
      const pidFile = join(o.work, "exec.pid");
      const detached = await o.toFiles(["exec", "--process", processFile, "--detach", "--pid-file", pidFile, id]);
      assertEquals(detached.code, 0, "exec --detach exits 0", describe(detached));
      const text = readTextOr(pidFile);
      assertMatch(text, /^[1-9]\d*$/, "the pid file holds one pid");
      const execPid = Number(text);
      o.pids.push(execPid);
      assert(!isDead(execPid), "the exec'd process is alive");
      assertEquals(readTextOr(`/proc/${execPid}/cmdline`), "sleep\x00999\x00", "the pid is the exec'd program's");
      const initNs = Deno.readLinkSync(`/proc/${pid}/ns/pid`);
      assertEquals(Deno.readLinkSync(`/proc/${execPid}/ns/pid`), initNs, "in the container's PID namespace");
      await o.gcrOk(["delete", "--force", id]);
      o.assertGone(id, [pid, execPid]);
      assertEquals(liveProcessesInPidNamespace(initNs), [], "nothing left in the PID namespace");
    }),
);

Deno.test(
  named(
    "oci exec --process: its own capability sets, for uid 1000 too; without them the container's five; an old record's one set",
    SKIP,
  ),
  () =>
    withOci(async (o) => {
      const container: CapSets = {
        bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        effective: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        permitted: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        inheritable: ["CAP_KILL", "CAP_NET_RAW"],
        ambient: ["CAP_NET_RAW"],
      };
      const bundle = await o.bundle((c) => {
        c.process.capabilities = container;
        c.process.args = ["sleep", "1000"];
      });
      const id = o.newId();
      const { pid } = await o.launch(id, bundle);
      const processFile = join(o.work, "process.json");
      const execStatus = async (process: Json): Promise<RunResult> => {
        Deno.writeTextFileSync(
          processFile,
          JSON.stringify({
            terminal: false,
            args: ["cat", "/proc/self/status"],
            env: [PATH_ENV],
            cwd: "/",
            ...process,
          }),
        );
        const exec = await o.gcr(["exec", "--process", processFile, id]);
        assertEquals(exec.code, 0, "exec succeeds", describe(exec));
        return exec;
      };
      assertEquals(
        shownCapabilities(readTextOr(`/proc/${pid}/status`)),
        capabilityMasks(container),
        "the container's process has config.json's sets",
      );

      // Its own sets, as uid 1000 with an ambient capability.
      const own: CapSets = {
        bounding: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETUID"],
        effective: ["CAP_CHOWN"],
        permitted: ["CAP_CHOWN"],
        inheritable: ["CAP_CHOWN", "CAP_DAC_OVERRIDE"],
        ambient: ["CAP_CHOWN"],
      };
      const mine = await execStatus({ user: { uid: 1000, gid: 1000 }, capabilities: own });
      assertMatch(mine.stdout, /^Uid:\s+1000\s/m, "uid 1000", describe(mine));
      assertEquals(shownCapabilities(mine.stdout), capabilityMasks(own), "the process.json's sets", describe(mine));

      // None in process.json: the container's five sets, as runc gives.
      const theirs = await execStatus({ user: { uid: 0, gid: 0 } });
      assertEquals(
        shownCapabilities(theirs.stdout),
        capabilityMasks(container),
        "the container's sets",
        describe(theirs),
      );

      // Refused by field as config.json's are, and nothing runs.
      Deno.writeTextFileSync(
        processFile,
        JSON.stringify({
          terminal: false,
          user: { uid: 1000, gid: 1000 },
          args: ["sh", "-c", "echo ran > /exec-ran"],
          env: [PATH_ENV],
          cwd: "/",
          capabilities: { ...own, ambient: ["CAP_DAC_OVERRIDE"] },
        }),
      );
      const refused = await o.gcr(["exec", "--process", processFile, id]);
      assert(refused.code !== 0, "an ambient capability that is not permitted is refused", describe(refused));
      assertEquals(lines(refused.stderr).length, 1, "one line", describe(refused));
      assertMatch(
        refused.stderr,
        /process\.capabilities\.ambient holds CAP_DAC_OVERRIDE, which process\.capabilities\.permitted lacks/,
        "the field and why",
        describe(refused),
      );
      assert(!exists(join(bundle, "rootfs", "exec-ran")), "nothing ran");

      // A record written by a gcr that kept one set (bounding = effective =
      // permitted) is entered with that set, inheritable and ambient empty.
      const recordFile = join(o.root, id, "container.json");
      const record = JSON.parse(Deno.readTextFileSync(recordFile));
      record.exec.capabilities = [CAPABILITIES.KILL, CAPABILITIES.NET_RAW];
      Deno.writeTextFileSync(recordFile, JSON.stringify(record, null, 2));
      const old = await execStatus({ user: { uid: 0, gid: 0 } });
      const one = ["CAP_KILL", "CAP_NET_RAW"];
      assertEquals(
        shownCapabilities(old.stdout),
        capabilityMasks({ bounding: one, effective: one, permitted: one, inheritable: [], ambient: [] }),
        "an old record's one set",
        describe(old),
      );
      await o.gcrOk(["delete", "--force", id]);
      o.assertGone(id, [pid]);
    }),
);

// ---------------------------------------------------------------------------
// 10. --console-socket

const CONSOLE_HELPER = `
import os, select, socket, sys, time
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
print("listening", flush=True)
server.settimeout(20)
conn, _ = server.accept()
msg, fds, flags, addr = socket.recv_fds(conn, 4096, 4)
print("fds", len(fds), flush=True)
master = fds[0]
print("target", os.readlink("/proc/self/fd/%d" % master), flush=True)
out = b""
deadline = time.time() + 20
while time.time() < deadline:
    ready, _, _ = select.select([master], [], [], 0.5)
    if ready:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
print("output", repr(out.decode(errors="replace")), flush=True)
`;

Deno.test(
  named("oci --console-socket: the pty master arrives over SCM_RIGHTS and carries the output", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.terminal = true;
        c.process.args = sh("tty; echo via-pty");
      });
      const id = o.newId();
      const refused = await o.create(id, bundle);
      assert(refused.code !== 0, "terminal=true without --console-socket fails", describe(refused));
      assertIncludes(refused.stderr, "console-socket", "it says --console-socket is needed", describe(refused));
      o.assertGone(id);

      const helper = join(o.work, "console.py");
      Deno.writeTextFileSync(helper, CONSOLE_HELPER);
      const socket = join(o.work, "console.sock");
      const python = exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
      const listener = new Running(python, [helper, socket], { timeoutMs: 30_000 });
      try {
        await listener.waitForStdout(/listening/);
        const id2 = o.newId();
        await o.launch(id2, bundle, ["--console-socket", socket]);
        const result = await listener.finish();
        assertEquals(result.code, 0, "the helper ran", describe(result));
        assertMatch(result.stdout, /^fds 1$/m, "one descriptor came", describe(result));
        assertMatch(result.stdout, /^target \/dev\/(pts\/)?ptmx$/m, "a pty master", describe(result));
        const output = result.stdout.match(/^output (.*)$/m)?.[1] ?? "";
        assertIncludes(output, "/dev/pts/0", "tty names the pty", describe(result));
        assertIncludes(output, "via-pty", "the output came through the master", describe(result));
        await o.waitStatus(id2, "stopped");
      } finally {
        listener.kill("SIGKILL");
        await listener.finish().catch(() => {});
      }
    }),
);

// ---------------------------------------------------------------------------
// 11. --log --log-format json

Deno.test(
  named("oci --log FILE --log-format json: a failing create appends a JSON error line", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => (c.linux.intelRdt = { closID: "gcr" }));
      const log = join(o.work, "runtime.log");
      Deno.writeTextFileSync(log, '{"level":"info","msg":"earlier"}\n');
      const id = o.newId();
      const created = await o.toFiles(["--log", log, "--log-format", "json", "create", "--bundle", bundle, id]);
      // toFiles puts --root first: gcr's global flags come in any order before the command.
      assert(created.code !== 0, "create fails", describe(created));
      const logged = lines(readTextOr(log));
      assertEquals(logged.length, 2, "one line appended", readTextOr(log));
      assertEquals(logged[0], '{"level":"info","msg":"earlier"}', "the earlier line is kept");
      const entry = JSON.parse(logged[1]!);
      assertEquals(entry.level, "error", "level", logged[1]);
      assertIncludes(entry.msg, "linux.intelRdt", "msg names the field", logged[1]);
      assert(!Number.isNaN(Date.parse(entry.time)), "time is a date", logged[1]);
      o.assertGone(id);
    }),
);

// ---------------------------------------------------------------------------
// 12. gcr killed during create

Deno.test(
  named("oci create killed midway: state is readable or absent, delete --force cleans up", SKIP),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = ["sleep", "1000"];
      });
      // gcr create takes about 100 ms here: most kills land while it runs, at random points.
      const delays = [0, 20, 40, 55, 65, 75, 85, 95, 105, 120, 150, 250].map((d) => d + Math.floor(Math.random() * 10));
      for (const delay of delays) {
        const id = o.newId();
        const create = new Running(GCR, ["--root", o.root, "create", "--bundle", bundle, id], {
          cwd: REPO,
          env: { GCR_STATE: STATE_DIR },
          timeoutMs: 30_000,
        });
        await sleep(delay);
        create.kill("SIGKILL");
        await waitFor(`create ${create.pid} to end`, () => isDead(create.pid) || undefined);
        // A container process that got to the gate holds the pipes: the result is not awaited here.
        const finished = create.finish().catch(() => undefined);
        const container = lines(readTextOr(join(o.root, id, "container.json"))).length > 0;
        const state = await o.gcr(["state", id]);
        if (state.code === 0) {
          const status = JSON.parse(state.stdout).status;
          assert(
            ["creating", "created", "stopped"].includes(status),
            `after a kill at ${delay} ms state is ${status}`,
            describe(state),
          );
          if (status === "created") o.pids.push(JSON.parse(state.stdout).pid);
        } else {
          assertMatch(state.stderr, /does not exist|no such container/i, `state at ${delay} ms`, describe(state));
        }
        const del = await o.gcr(["delete", "--force", id]);
        assertEquals(del.code, 0, `delete --force after a kill at ${delay} ms (record: ${container})`, describe(del));
        await waitFor(`no process of ${id}`, () => liveProcessesWith(id).length === 0 || undefined, 5000).catch(
          () => {},
        );
        o.assertGone(id);
        await finished;
      }
    }),
);

// ---------------------------------------------------------------------------
// 13. features, --version

Deno.test(named("oci features and --version", SKIP), async () => {
  const features = await gcr(["features"]);
  assertEquals(features.code, 0, "features exits 0", describe(features));
  const json = JSON.parse(features.stdout);
  assertMatch(json.ociVersionMin, /^1\.\d+\.\d+$/, "ociVersionMin", features.stdout);
  assertMatch(json.ociVersionMax, /^1\.\d+\.\d+$/, "ociVersionMax", features.stdout);
  assert(Array.isArray(json.linux?.namespaces) && json.linux.namespaces.includes("pid"), "namespaces listed");
  const version = await gcr(["--version"]);
  assertEquals(version.code, 0, "--version exits 0", describe(version));
  assertMatch(lines(version.stdout)[0] ?? "", /^gcr version \d+\.\d+\.\d+/, "a version line", describe(version));
  assertNotIncludes(version.stderr, "error", "no error", describe(version));
});
