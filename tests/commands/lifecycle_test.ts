/**
 * Containers after they start, as a user sees them: `gcr run -d`, `ps`,
 * `logs`, `stop`, `kill`, `rm`, `inspect`, `exec`, and what is left when a
 * container or gcr itself is killed behind gcr's back. Real containers on
 * the busybox image, each test in a state directory of its own, which it
 * empties (gcr rm -f) and removes even when it fails, checking that no
 * process of its own (monitor, container) remains.
 */
import { join } from "node:path";
import {
  busyboxRootfs,
  containerIds,
  describe,
  ensureFixtureDirs,
  ensureUser,
  GCR,
  gcr,
  type GcrOptions,
  hostNamespaces,
  isDead,
  liveProcessesInPidNamespace,
  liveProcessesWith,
  missingRoot,
  named,
  needs,
  parseMountinfo,
  RANGED_USER,
  REPO,
  ROOTFS_DIR,
  rootlessUnavailable,
  Running,
  type RunResult,
  SCRATCH,
  spawnGcr,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, assertNotEquals, lines, waitFor } from "../helpers.ts";
import { exists } from "../../host/files.ts";
import { sleep } from "../../host/time.ts";

// ---------------------------------------------------------------------------
// One state directory per test

interface State {
  dir: string;
  env: Record<string, string>;
  /** Container folders (data and runtime), by id. */
  ids: () => string[];
  /** Runs gcr with this state directory. */
  gcr: (args: readonly string[], options?: GcrOptions) => Promise<RunResult>;
  /** Runs gcr with this state directory and fails unless it exits 0. */
  ok: (args: readonly string[], options?: GcrOptions) => Promise<RunResult>;
  /** `gcr run -d <args…>`: the id it printed. */
  runD: (args: readonly string[]) => Promise<string>;
  /** `gcr inspect <ref>`: the one record. */
  inspect: (ref: string) => Promise<Inspected>;
  /** The rows of `gcr ps -a` (header left out). */
  psAll: () => Promise<string[]>;
}

interface Inspected {
  id: string;
  name?: string;
  image: string;
  command: string[];
  pid: number;
  status: string;
  initPid?: number;
  started?: string;
  exitStatus?: number;
  paths: { runtime: string; data: string; log: string };
}

/** A fresh state directory for one test, so it sees exactly the containers it made. */
function freshState(): State {
  ensureFixtureDirs();
  const dir = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "state-" });
  const env = { GCR_STATE: dir };
  const ids = () => containerIds(dir);
  const run = (args: readonly string[], options: GcrOptions = {}) =>
    gcr(args, { ...options, env: { ...env, ...options.env } });
  const ok = async (args: readonly string[], options: GcrOptions = {}) => {
    const result = await run(args, options);
    assertEquals(result.code, 0, "gcr should succeed", describe(result));
    return result;
  };
  return {
    dir,
    env,
    ids,
    gcr: run,
    ok,
    runD: async (args) => {
      const result = await ok(["run", "-d", ...args]);
      return assertMatch(result.stdout, /^([0-9a-f]{12})\n$/, "run -d prints the id", describe(result))[1]!;
    },
    inspect: async (ref) => {
      const result = await ok(["inspect", ref]);
      const parsed = JSON.parse(result.stdout) as Inspected[];
      assertEquals(parsed.length, 1, "inspect of one container: one record", describe(result));
      return parsed[0]!;
    },
    psAll: async () => lines((await ok(["ps", "-a"])).stdout).slice(1),
  };
}

/** Live processes whose environment carries `GCR_STATE=<dir>`: gcr processes of this test (monitors above all). */
function gcrProcessesOf(dir: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    try {
      const environ = Deno.readTextFileSync(`/proc/${entry.name}/environ`).split("\0");
      if (environ.includes(`GCR_STATE=${dir}`) && !isDead(Number(entry.name))) found.push(Number(entry.name));
    } catch { /* gone */ }
  }
  return found;
}

function describeProcess(pid: number): string {
  try {
    return `${pid}: ${Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ").trim()}`;
  } catch {
    return `${pid}: (gone)`;
  }
}

/** Mounts on the host under `dir`. */
function mountsUnder(dir: string): string[] {
  return parseMountinfo(Deno.readTextFileSync("/proc/self/mountinfo"))
    .map((m) => m.mountPoint)
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/**
 * Runs `body` with a fresh state directory; afterwards removes every
 * container in it (gcr rm -f), kills (by pid) and reports any process of its
 * own left (gcr processes with its GCR_STATE, processes in its containers'
 * PID namespaces), and removes the directory. Leftovers fail the test, unless
 * it failed already (that failure is the one to see).
 */
async function withState(body: (state: State) => Promise<void>): Promise<void> {
  await busyboxRootfs();
  const state = freshState();
  // The PID namespaces of this test's containers, from their records, as they are found.
  const namespaces = new Set<string>();
  const noteNamespaces = () => {
    for (const id of state.ids()) {
      try {
        const record = JSON.parse(Deno.readTextFileSync(join(state.dir, "run", id, "container.json")));
        if (record.initPid) namespaces.add(Deno.readLinkSync(`/proc/${record.initPid}/ns/pid`));
      } catch { /* no record, or the process is gone */ }
    }
  };
  const watcher = setInterval(noteNamespaces, 100);
  let passed = false;
  try {
    await body(state);
    passed = true;
  } finally {
    clearInterval(watcher);
    noteNamespaces();
    const problems: string[] = [];
    for (const id of state.ids()) {
      const result = await state.gcr(["rm", "-f", id]);
      if (result.code !== 0) problems.push(`gcr rm -f ${id} failed:\n${describe(result)}`);
    }
    const leftovers = () => [
      ...gcrProcessesOf(state.dir),
      ...[...namespaces].flatMap((ns) => liveProcessesInPidNamespace(ns)),
    ];
    const deadline = performance.now() + 5000;
    while (leftovers().length && performance.now() < deadline) await sleep(50);
    const left = leftovers();
    if (left.length) problems.push(`processes left:\n${left.map(describeProcess).join("\n")}`);
    for (const pid of left) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    const mounts = mountsUnder(state.dir);
    if (mounts.length) problems.push(`mounts left: ${mounts.join(", ")}`);
    else Deno.removeSync(state.dir, { recursive: true });
    if (passed) assertEquals(problems, [], "the test leaves no container, process or mount");
  }
}

const RUN = ["--rootfs-dir", ROOTFS_DIR];

/** Waits until `gcr ps -a` shows `id` exited, and returns its row. */
function exitedRow(state: State, id: string, timeoutMs = 10_000): Promise<string> {
  return waitFor(
    `${id} to show as exited in ps -a`,
    async () => {
      const row = (await state.psAll()).find((r) => r.startsWith(id));
      return row && /Exited/.test(row) ? row : undefined;
    },
    timeoutMs,
    100,
  );
}

/** Waits until the log of `ref` contains `part`. */
function logHas(state: State, ref: string, part: string, timeoutMs = 10_000): Promise<string> {
  return waitFor(
    `the log of ${ref} to contain ${JSON.stringify(part)}`,
    async () => {
      const out = (await state.ok(["logs", ref])).stdout;
      return out.includes(part) ? out : undefined;
    },
    timeoutMs,
    100,
  );
}

/** Whether the process `pid` runs now (not gone, not a zombie). */
const alive = (pid: number) => !isDead(pid);

// ---------------------------------------------------------------------------

Deno.test(
  named("run -d --name web: prints a 12-hex id at once; ps, ps -q and inspect show it running", missingRoot()),
  () =>
    withState(async (state) => {
      const started = performance.now();
      const wallClockBefore = Date.now();
      const result = await state.ok(["run", "-d", "--name", "web", ...RUN, "busybox", "sleep", "30"]);
      const elapsed = performance.now() - started;
      const id = assertMatch(result.stdout, /^([0-9a-f]{12})\n$/, "stdout is the id alone", describe(result))[1]!;
      assert(elapsed < 5000, `run -d returned after ${Math.round(elapsed)} ms, not at once`, describe(result));

      const ps = lines((await state.ok(["ps"])).stdout);
      assertMatch(ps[0] ?? "", /^CONTAINER ID\s+NAME\s+IMAGE\s+COMMAND\s+STATUS\s+PID\s+CREATED$/, "ps header");
      assertEquals(ps.length, 2, "ps: the header and one container", ps.join("\n"));
      const info = await state.inspect("web");
      assertMatch(
        ps[1]!,
        new RegExp(`^${id}\\s+web\\s+busybox\\s+"sleep 30"\\s+Up [^-]*?\\s+${info.initPid}\\s+.* ago$`),
        "ps row: id, name, image, command, Up, pid",
      );
      assertEquals(lines((await state.ok(["ps", "-q"])).stdout), [id], "ps -q: the id alone");

      const raw = (await state.ok(["inspect", id])).stdout;
      const records = JSON.parse(raw);
      assert(Array.isArray(records) && records.length === 1, "inspect prints a JSON array of one record", raw);
      assertEquals(
        [info.id, info.name, info.image, info.command, info.status],
        [id, "web", "busybox", ["sleep", "30"], "running"],
        "inspect: id, name, image, command, status",
        raw,
      );
      assert(info.initPid && alive(info.initPid), `initPid ${info.initPid} is a live process`, raw);
      // When the command was exec'd: after this test started it, before inspect looked.
      const startedAt = Date.parse(info.started ?? "");
      assert(
        startedAt >= wallClockBefore - 1000 && startedAt <= Date.now(),
        `inspect's started ${info.started} is the command's start`,
        raw,
      );
      assertEquals(
        Deno.readTextFileSync(`/proc/${info.initPid}/cmdline`),
        "sleep\x0030\x00",
        "initPid is the container's command",
      );
      assertIncludes(describeProcess(info.pid), "__monitor", "the record's pid is the monitor", raw);
      assertNotEquals(
        Deno.readLinkSync(`/proc/${info.initPid}/ns/pid`),
        hostNamespaces().pid,
        "the container has a PID namespace of its own",
      );
      // Still running well after run -d returned.
      assertEquals((await state.inspect(id)).status, "running", "still running");
    }),
);

Deno.test(
  named("logs: stdout and stderr of a detached container; logs -f follows until it exits", missingRoot()),
  () =>
    withState(async (state) => {
      // -q: gcr's own "running as" lines would land in the log too.
      const id = await state.runD([
        ...RUN,
        "-q",
        "busybox",
        "sh",
        "-c",
        "echo out-1; echo err-1 >&2; sleep 1; echo out-2",
      ]);
      const started = performance.now();
      const follow = await state.gcr(["logs", "-f", id], { timeoutMs: 15_000 });
      const elapsed = performance.now() - started;
      assertEquals(follow.code, 0, "logs -f exits 0", describe(follow));
      assertEquals(
        lines(follow.stdout),
        ["out-1", "err-1", "out-2"],
        "logs -f: both streams, all lines",
        describe(follow),
      );
      assert(elapsed > 500, `logs -f returned after ${Math.round(elapsed)} ms: it did not follow`, describe(follow));
      const row = await exitedRow(state, id, 5000);
      assertMatch(row, /Exited \(0\)/, "the container exited 0 by the time logs -f returned");
      const plain = await state.ok(["logs", id]);
      assertEquals(lines(plain.stdout), ["out-1", "err-1", "out-2"], "logs after the end", describe(plain));

      // A stopped-by-stderr container: what it said before dying is kept.
      const failing = await state.runD([...RUN, "-q", "busybox", "sh", "-c", "echo oops >&2; exit 2"]);
      await exitedRow(state, failing);
      assertEquals((await state.ok(["logs", failing])).stdout, "oops\n", "stderr alone lands in the log");
      assertEquals((await state.inspect(failing)).exitStatus, 2, "its exit status");
    }),
);

Deno.test(
  named(
    "stop: -t 1 kills a pid 1 that ignores SIGTERM (137); a TERM trap ends it at once with its status",
    missingRoot(),
  ),
  () =>
    withState(async (state) => {
      const sleeper = await state.runD([...RUN, "busybox", "sleep", "30"]);
      let started = performance.now();
      const stop = await state.ok(["stop", "-t", "1", sleeper]);
      let elapsed = performance.now() - started;
      assertEquals(stop.stdout, `${sleeper}\n`, "stop prints the container it stopped", describe(stop));
      assert(elapsed >= 900, `stop -t 1 took ${Math.round(elapsed)} ms: it did not wait the grace period`);
      assert(elapsed < 6000, `stop -t 1 took ${Math.round(elapsed)} ms`);
      // Said right away, without waiting for anything.
      const sleeperInfo = await state.inspect(sleeper);
      assertEquals([sleeperInfo.status, sleeperInfo.exitStatus], ["stopped", 137], "inspect after stop -t 1");
      assertMatch((await state.psAll()).find((r) => r.startsWith(sleeper)) ?? "", /Exited \(137\)/, "ps -a row");
      assertEquals(lines((await state.ok(["ps", "-q"])).stdout), [], "ps no longer lists it");

      const trapper = await state.runD([
        ...RUN,
        "busybox",
        "sh",
        "-c",
        'trap "exit 3" TERM; echo ready; while :; do sleep 0.1; done',
      ]);
      await logHas(state, trapper, "ready");
      started = performance.now();
      const stop2 = await state.ok(["stop", trapper]);
      elapsed = performance.now() - started;
      assert(elapsed < 5000, `stop of a container that exits on TERM took ${Math.round(elapsed)} ms`, describe(stop2));
      const trapperInfo = await state.inspect(trapper);
      assertEquals([trapperInfo.status, trapperInfo.exitStatus], ["stopped", 3], "inspect after stop: its own status");
      assertMatch((await state.psAll()).find((r) => r.startsWith(trapper)) ?? "", /Exited \(3\)/, "ps -a row");
    }),
);

Deno.test(
  named("kill -s USR1 and by number reach pid 1; kill of a stopped container fails with exit 1", missingRoot()),
  () =>
    withState(async (state) => {
      const id = await state.runD([
        ...RUN,
        "--name",
        "sig",
        "busybox",
        "sh",
        "-c",
        'trap "echo got-usr1" USR1; trap "echo got-usr2" USR2; echo ready; while :; do sleep 0.1; done',
      ]);
      await logHas(state, id, "ready");
      const usr1 = await state.ok(["kill", "-s", "USR1", "sig"]);
      assertEquals(usr1.stdout, "sig\n", "kill prints the container", describe(usr1));
      await logHas(state, id, "got-usr1");
      await state.ok(["kill", "-s", "12", id]);
      await logHas(state, id, "got-usr2");
      assertEquals((await state.inspect(id)).status, "running", "handled signals leave it running");

      const bad = await state.gcr(["kill", "-s", "NOPE", id]);
      assertEquals(bad.code, 125, "an unknown signal is a usage error", describe(bad));
      assertMatch(bad.stderr, /unknown signal "NOPE"/, "says which signal", describe(bad));

      await state.ok(["kill", "-s", "9", id]);
      await exitedRow(state, id);
      const info = await state.inspect(id);
      assertEquals([info.status, info.exitStatus], ["stopped", 137], "after kill -s 9");

      const again = await state.gcr(["kill", id]);
      assertEquals(again.code, 1, "kill of a stopped container exits 1", describe(again));
      assertEquals(lines(again.stderr), [`gcr: container ${id} is not running`], "one clear line", describe(again));
      assertEquals(again.stdout, "", "nothing on stdout", describe(again));
    }),
);

Deno.test(
  named("names are unique: a second run -d --name web fails with one line, exit 125, leaving nothing", missingRoot()),
  () =>
    withState(async (state) => {
      const first = await state.runD([...RUN, "--name", "web", "busybox", "sleep", "30"]);
      const second = await state.gcr(["run", "-d", ...RUN, "--name", "web", "busybox", "sleep", "30"]);
      assertEquals(second.code, 125, "exit status", describe(second));
      assertEquals(second.stdout, "", "no id printed", describe(second));
      assertEquals(lines(second.stderr).length, 1, "one line of error", describe(second));
      assertMatch(second.stderr, /^gcr: .*"web".*taken.*/, "says the name is taken", describe(second));
      assertEquals(lines((await state.ok(["ps", "-a", "-q"])).stdout), [first], "ps -a: the first container only");
      assertEquals(state.ids(), [first], "no folder of the refused container");
      const info = await state.inspect("web");
      assertEquals([info.id, info.status], [first, "running"], "the name still names the first, running");
      // The refused run's monitor is gone; the first one's stays.
      await waitFor("the refused monitor to exit", () => {
        const monitors = gcrProcessesOf(state.dir);
        return monitors.length === 1 && monitors[0] === info.pid ? true : undefined;
      });
      // Once removed, the name is free again.
      await state.ok(["rm", "-f", "web"]);
      const third = await state.runD([...RUN, "--name", "web", "busybox", "true"]);
      assertNotEquals(third, first, "a new container");
    }),
);

Deno.test(
  named("rm: refuses a running container; rm -f kills and removes it; by name and by id prefix", missingRoot()),
  () =>
    withState(async (state) => {
      const id = await state.runD([...RUN, "--name", "busy", "busybox", "sleep", "30"]);
      const info = await state.inspect(id);
      const refused = await state.gcr(["rm", "busy"]);
      assertEquals(refused.code, 1, "rm of a running container exits 1", describe(refused));
      assertMatch(refused.stderr, new RegExp(`^gcr: container ${id} is running .*gcr rm -f`), "why", describe(refused));
      assertEquals((await state.inspect(id)).status, "running", "still running after the refusal");
      assert(exists(info.paths.runtime) && exists(info.paths.data), "folders still there");

      const forced = await state.ok(["rm", "-f", "busy"]);
      assertEquals(forced.stdout, `${id}\n`, "rm -f prints the id", describe(forced));
      assert(isDead(info.initPid!), "rm -f killed the container's process");
      assert(!exists(info.paths.runtime), `runtime folder ${info.paths.runtime} removed`);
      assert(!exists(info.paths.data), `data folder ${info.paths.data} removed`);
      assertEquals(lines((await state.ok(["ps", "-a", "-q"])).stdout), [], "ps -a lists nothing");
      const gone = await state.gcr(["inspect", "busy"]);
      assertEquals(gone.code, 1, "inspect of a removed container fails", describe(gone));
      assertMatch(gone.stderr, /no such container "busy"/, "says so", describe(gone));

      const named1 = await state.runD([...RUN, "--name", "done", "busybox", "true"]);
      const bare = await state.runD([...RUN, "busybox", "true"]);
      await exitedRow(state, named1);
      await exitedRow(state, bare);
      assertEquals((await state.ok(["rm", "done"])).stdout, `${named1}\n`, "rm by name");
      assertEquals((await state.ok(["rm", bare.slice(0, 5)])).stdout, `${bare}\n`, "rm by id prefix");
      assertEquals(state.ids(), [], "no folder left");
      const missing = await state.gcr(["rm", "nosuchthing"]);
      assertEquals(missing.code, 1, "rm of an unknown container exits 1", describe(missing));
      assertMatch(missing.stderr, /no such container "nosuchthing"/, "says so", describe(missing));
    }),
);

const NAMESPACES = ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup"];

Deno.test(
  named(
    "exec: the process has the container's capabilities, no_new_privs and seccomp filter, as its pid 1 has",
    missingRoot(),
  ),
  () =>
    withState(async (state) => {
      const id = await state.runD([...RUN, "busybox", "sleep", "30"]);
      const initPid = (await state.inspect(id)).initPid!;
      const hardening = /^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):.*$/gm;
      const init = Deno.readTextFileSync(`/proc/${initPid}/status`).match(hardening)!.join("\n");
      assertMatch(init, /Seccomp:\s+2/, "the container's pid 1 is filtered");
      const exec = await state.ok(["exec", id, "cat", "/proc/self/status"]);
      assertEquals(exec.stdout.match(hardening)!.join("\n"), init, "the exec'd process", describe(exec));
    }),
);

Deno.test(
  named("exec: joins every namespace, sees the container's files and processes; -e -w -u; statuses; -d", missingRoot()),
  () =>
    withState(async (state) => {
      const id = await state.runD([
        ...RUN,
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo from-init > /tmp/init-file; while :; do sleep 1; done",
      ]);
      const info = await state.inspect(id);
      const initPid = info.initPid!;

      const ns = await state.ok([
        "exec",
        "box",
        "sh",
        "-c",
        `for n in ${NAMESPACES.join(" ")}; do readlink /proc/self/ns/$n; done`,
      ]);
      const host = hostNamespaces();
      const ofInit = NAMESPACES.map((n) => Deno.readLinkSync(`/proc/${initPid}/ns/${n}`));
      assertEquals(lines(ns.stdout), ofInit, "exec's namespaces are the container's", describe(ns));
      for (const [index, name] of NAMESPACES.entries()) {
        assertNotEquals(ofInit[index], host[name], `the container's ${name} namespace is not the host's`);
      }

      const file = await waitFor("the container's /tmp/init-file", async () => {
        const result = await state.gcr(["exec", id, "cat", "/tmp/init-file"]);
        return result.code === 0 ? result : undefined;
      });
      assertEquals(file.stdout, "from-init\n", "exec sees what the container wrote", describe(file));

      const self = await state.ok(["exec", "box", "sh", "-c", "echo $$"]);
      const inner = Number(self.stdout.trim());
      assert(inner > 1 && inner < 100, `exec's pid inside is small (got ${self.stdout.trim()})`, describe(self));
      const ps = await state.ok(["exec", "box", "ps"]);
      assertMatch(ps.stdout, /^\s*1\s+\S+\s+sh -c echo from-init/m, "ps inside: pid 1 is the command", describe(ps));

      const opts = await state.ok([
        "exec",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "box",
        "sh",
        "-c",
        "echo $FOO; pwd; id",
      ]);
      const [foo, pwd, ident] = lines(opts.stdout);
      assertEquals([foo, pwd], ["bar", "/tmp"], "-e and -w", describe(opts));
      assertMatch(ident ?? "", /^uid=65534\(nobody\) gid=65534\(/, "-u nobody", describe(opts));
      const plain = await state.ok(["exec", "box", "sh", "-c", "id -u; pwd; echo ${FOO:-unset}"]);
      assertEquals(
        lines(plain.stdout),
        ["0", "/", "unset"],
        "without options: root, /, the container's env",
        describe(plain),
      );

      const seven = await state.gcr(["exec", "box", "sh", "-c", "exit 7"]);
      assertEquals(seven.code, 7, "the exit status passes through", describe(seven));
      const missing = await state.gcr(["exec", "box", "no-such-command"]);
      assertEquals(missing.code, 127, "command not found: 127", describe(missing));
      assertMatch(missing.stderr, /no-such-command.*not found/, "says so", describe(missing));

      // exec -d returns at once even when its output is read through a pipe
      // (as $(gcr exec -d …) does): the process must not keep gcr's stdout.
      const started = performance.now();
      const execD = await spawnGcr(["exec", "-d", "box", "sleep", "31"], { env: state.env });
      await waitFor("gcr exec -d to exit", () => (isDead(execD.pid) ? true : undefined), 5000);
      const ps2 = await waitFor("sleep 31 in the container", async () => {
        const result = await state.ok(["exec", "box", "ps"]);
        return /^\s*\d+\s+\S+\s+sleep 31$/m.test(result.stdout) ? result : undefined;
      });
      assertMatch(ps2.stdout, /^\s*\d+\s+\S+\s+sleep 31$/m, "exec -d's process runs in the container");
      const released = await Promise.race([execD.finish().then(() => true), sleep(3000).then(() => false)]);
      const elapsed = performance.now() - started;
      assert(
        released,
        `gcr exec -d exited, but its stdout/stderr stayed open ${Math.round(elapsed)} ms after the start: ` +
          "the detached process holds them, so $(gcr exec -d …) hangs until it ends",
        `${execD.command}\nstdout: ${execD.stdout}\nstderr: ${execD.stderr}`,
      );
      const detached = await execD.finish();
      assertEquals([detached.code, detached.stdout], [0, ""], "exec -d: exit 0, prints nothing", describe(detached));

      await state.ok(["stop", "-t", "1", "box"]);
      const stopped = await state.gcr(["exec", "box", "true"]);
      assertEquals(stopped.code, 125, "exec into a stopped container: 125", describe(stopped));
      assertEquals(lines(stopped.stderr), [`gcr: container ${id} is not running`], "one clear line", describe(stopped));
    }),
);

/** Host pids in PID namespace `nsLink` whose command line is `argv`. */
function hostPidsRunning(nsLink: string, argv: string[]): number[] {
  return liveProcessesInPidNamespace(nsLink).filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`) === argv.map((a) => `${a}\0`).join("");
    } catch {
      return false;
    }
  });
}

function memoryCgroup(pid: number | "self"): string | undefined {
  return Deno.readTextFileSync(`/proc/${pid}/cgroup`).split("\n").find((line) =>
    /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(line) || /^0::/.test(line)
  );
}

Deno.test(
  named("exec into a container with --memory 64m: the process is in the container's cgroups", missingRoot()),
  () =>
    withState(async (state) => {
      const id = await state.runD([...RUN, "--memory", "64m", "busybox", "sleep", "30"]);
      const info = await state.inspect(id);
      const nsLink = Deno.readLinkSync(`/proc/${info.initPid}/ns/pid`);
      // A foreground exec, left running (exec -d's own output handling is tested above).
      const exec = await spawnGcr(["exec", id, "sleep", "29"], { env: state.env });
      const [pid] = await waitFor("the exec'd sleep 29 on the host", () => {
        const found = hostPidsRunning(nsLink, ["sleep", "29"]);
        return found.length === 1 ? found : undefined;
      });
      const ofInit = Deno.readTextFileSync(`/proc/${info.initPid}/cgroup`);
      assertEquals(Deno.readTextFileSync(`/proc/${pid}/cgroup`), ofInit, "exec'd process: the same cgroups as init");
      assertNotEquals(
        memoryCgroup(info.initPid!),
        memoryCgroup("self"),
        "the container's memory cgroup is its own",
        ofInit,
      );
      assertIncludes(memoryCgroup(info.initPid!) ?? "", id, "the memory cgroup is named for the container", ofInit);
      Deno.kill(pid!, "SIGKILL");
      const ended = await exec.finish();
      assertEquals(ended.code, 137, "gcr exec reports its process's death by SIGKILL", describe(ended));
    }),
);

Deno.test(
  named("a container killed behind gcr's back (kill -9 of its pid 1) shows exited 137; rm works", missingRoot()),
  () =>
    withState(async (state) => {
      const id = await state.runD([...RUN, "busybox", "sleep", "30"]);
      const info = await state.inspect(id);
      Deno.kill(info.initPid!, "SIGKILL");
      const row = await exitedRow(state, id);
      assertMatch(row, /Exited \(137\)/, "ps -a: exited, killed by signal 9");
      const after = await state.inspect(id);
      assertEquals([after.status, after.exitStatus], ["stopped", 137], "inspect");
      await waitFor("the monitor to exit", () => (isDead(info.pid) ? true : undefined));
      await state.ok(["rm", id]);
      assertEquals(state.ids(), [], "rm removed its folders");
    }),
);

Deno.test(
  named(
    "a detached container's monitor SIGKILLed: the container dies with it, shows stopped, rm cleans",
    missingRoot(),
  ),
  () =>
    withState(async (state) => {
      const id = await state.runD([...RUN, "busybox", "sleep", "30"]);
      const info = await state.inspect(id);
      const record = JSON.parse(Deno.readTextFileSync(join(info.paths.runtime, "container.json")));
      assertEquals(record.pid, info.pid, "the record's pid");
      assertIncludes(describeProcess(record.pid), "__monitor", "the record's pid is the monitor");
      assertEquals(
        [Deno.readTextFileSync(`/proc/${record.pid}/comm`).trim(), Deno.readLinkSync(`/proc/${record.pid}/exe`)],
        ["gcr-monitor", "/memfd:gcr-monitor (deleted)"],
        "the monitor is gcr-monitor, run from its sealed memfd: no Deno waits for a detached container",
      );
      Deno.kill(record.pid, "SIGKILL");
      await waitFor("the container's pid 1 to die with its monitor", () => (isDead(info.initPid!) ? true : undefined));
      const row = await exitedRow(state, id);
      assertMatch(row, /Exited \(/, "ps -a shows it exited");
      assertEquals((await state.inspect(id)).status, "stopped", "inspect: stopped");
      await state.ok(["rm", id]);
      assertEquals(state.ids(), [], "rm removed its folders");
    }),
);

/** Live processes with `marker` in their command line, killed (by pid) and returned. */
function killMarked(marker: string): string[] {
  const found = liveProcessesWith(marker);
  const described = found.map(describeProcess);
  for (const pid of found) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
  return described;
}

// gcr run --step paused at the prompt of each of these steps, then SIGKILLed:
// before the clone; cloned but before die-with-parent; just after it; with
// everything mounted, before exec.
for (const step of ["clone", "die-with-parent", "close-fds", "exec"]) {
  Deno.test(
    named(
      `a foreground gcr run --step SIGKILLed at the ${step} prompt: stopped, rm cleans, no process or mount left`,
      needs("setsid"),
    ),
    () =>
      withState(async (state) => {
        const mountsBefore = mountsUnder(state.dir).length;
        const marker = `gcr-lifecycle-${crypto.randomUUID()}`;
        // A session of its own: no terminal, so --step reads Enter from stdin.
        const running = new Running(
          "setsid",
          ["-w", GCR, "run", ...RUN, "--step", "busybox", "sh", "-c", "sleep 30", marker],
          { cwd: REPO, env: state.env, stdinPipe: true, timeoutMs: 30_000 },
        );
        try {
          for (let n = 1;; n++) {
            const prompt = await waitFor(`prompt ${n}`, () => {
              const match = running.stderr.match(new RegExp(`^\\[${n}/\\d+\\] ([a-z-]+): `, "m"));
              return match ? match[1] : undefined;
            }, 15_000);
            if (prompt === step) break;
            await running.write("\n");
          }
          const [id, ...more] = state.ids();
          assert(id && more.length === 0, "one container is registered while paused", running.stderr);
          const recordPath = join(state.dir, "run", id, "container.json");
          const record = JSON.parse(Deno.readTextFileSync(recordPath));
          assertEquals(record.pid, running.pid, "the record's pid is the foreground gcr");
          Deno.kill(record.pid, "SIGKILL");
          await waitFor("gcr to die", () => (isDead(running.pid) ? true : undefined));
          // What the container started as dies with gcr: a survivor is killed here and fails the test.
          let survivors: string[] = [];
          try {
            await waitFor("no process of the run left", () => (liveProcessesWith(marker).length ? undefined : true));
          } catch {
            survivors = killMarked(marker);
          }
          assertEquals(survivors, [], "processes of the run alive 5 s after gcr was SIGKILLed");
          const result = await running.finish();
          assertEquals(result.code, 137, "gcr was killed", describe(result));
          JSON.parse(Deno.readTextFileSync(recordPath)); // still valid JSON
          const row = (await state.psAll()).find((r) => r.startsWith(id)) ?? "";
          assertMatch(row, /^\S+\s+busybox\s+"sh -c sleep 30 .*Exited/, "ps -a shows it stopped");
          assertEquals((await state.inspect(id)).status, "stopped", "inspect");
          assertEquals(mountsUnder(state.dir).length, mountsBefore, "no mount left under the state directory");
          await state.ok(["rm", id]);
          assertEquals(state.ids(), [], "rm removed its folders");
        } finally {
          running.kill("SIGKILL");
          killMarked(marker);
          await running.finish().catch(() => {});
        }
      }),
  );
}

Deno.test(
  named("run -d --rm: after the container exits, no record and no data folder are left", missingRoot()),
  () =>
    withState(async (state) => {
      const id = await state.runD([...RUN, "--rm", "busybox", "sleep", "1"]);
      const info = await state.inspect(id);
      assertEquals(info.status, "running", "running at first");
      assert(exists(info.paths.runtime) && exists(info.paths.data), "its folders exist while it runs");
      await waitFor("the --rm container to be removed", () => (state.ids().length === 0 ? true : undefined), 10_000);
      assertEquals(lines((await state.ok(["ps", "-a", "-q"])).stdout), [], "ps -a lists nothing");
      assert(!exists(info.paths.runtime) && !exists(info.paths.data), "both folders gone");
      await waitFor("the monitor to exit", () => (isDead(info.pid) ? true : undefined));
    }),
);

Deno.test(
  named(
    "rootless: a runtime folder under $XDG_RUNTIME_DIR that is a symlink, or not the user's, is refused before anything is kept there",
    rootlessUnavailable(),
  ),
  async () => {
    await busyboxRootfs();
    const account = await ensureUser(RANGED_USER);
    ensureFixtureDirs();
    const dir = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "xdg-" });
    try {
      const runtime = join(dir, "runtime");
      const elsewhere = join(dir, "elsewhere");
      Deno.mkdirSync(runtime, { mode: 0o700 });
      Deno.mkdirSync(elsewhere, { mode: 0o700 });
      Deno.chmodSync(dir, 0o755);
      for (const folder of [runtime, elsewhere]) Deno.chownSync(folder, account.uid, account.gid);
      const run = () =>
        gcr(["run", "-q", "--rm", "busybox", "true"], { user: RANGED_USER, env: { XDG_RUNTIME_DIR: runtime } });

      // A link planted where the records go (the user's own folder, but named through a link).
      Deno.symlinkSync(elsewhere, join(runtime, "gcr"));
      const linked = await run();
      assertEquals(linked.code, 125, "refused", describe(linked));
      assertIncludes(
        linked.stderr,
        `refusing to keep containers' state in ${runtime}/gcr: it is a symlink`,
        "one line says why",
        describe(linked),
      );
      assertEquals([...Deno.readDirSync(elsewhere)], [], "nothing kept through the link");

      // A folder of someone else's (root's) in its place.
      Deno.removeSync(join(runtime, "gcr"));
      Deno.mkdirSync(join(runtime, "gcr"), { mode: 0o777 });
      Deno.chmodSync(join(runtime, "gcr"), 0o777);
      const foreign = await run();
      assertEquals(foreign.code, 125, "refused", describe(foreign));
      assertIncludes(foreign.stderr, "it is owned by uid 0", "one line says whose it is", describe(foreign));
      assertEquals([...Deno.readDirSync(join(runtime, "gcr"))], [], "nothing kept in it");

      // The control: the user's own folder is used, and left with the sticky bit runc gives its own.
      Deno.removeSync(join(runtime, "gcr"));
      const own = await run();
      assertEquals(own.code, 0, "runs with the user's own folder", describe(own));
      const made = Deno.lstatSync(join(runtime, "gcr"));
      assertEquals([made.isDirectory, made.uid, (made.mode ?? 0) & 0o7777], [true, account.uid, 0o1700]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
