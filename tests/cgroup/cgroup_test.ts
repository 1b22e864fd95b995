/**
 * Container cgroups on the real hierarchies of this host, as root: the v1
 * hierarchies (memory, cpu, cpuacct, pids) and, on a hybrid host, the
 * cgroup2 mount beside them (/sys/fs/cgroup/unified, which offers only the
 * controllers no v1 hierarchy holds). A limit test that the v2 hierarchy
 * cannot run here is ignored with the reason in its name; on a
 * cgroup2-only host the same tests run on v2. Where a test needs a cgroup
 * lacking a controller, it makes one.
 *
 * Every process these tests start waits on its stdin until the test has
 * moved it into the cgroup, so it is limited from its first allocation.
 */
import { type ContainerCgroup, createContainerCgroup } from "../../cgroup/container_cgroup.ts";
import { CgroupUnavailableError, detectCgroups } from "../../cgroup/hierarchies.ts";
import { InvalidLimitError, parseCpus, parseMemory, parsePidsLimit, type ResourceLimits } from "../../cgroup/limits.ts";
import { ownCgroupProcs, primeMigration } from "../../cgroup/migration.ts";
import { showCgroupOp } from "../../cgroup/ops.ts";
import { explainContainerCgroup, planContainerCgroup } from "../../cgroup/plan.ts";
import { type CgroupOptions, CPU_PERIOD_US, GCR_FOLDER } from "../../cgroup/version_plan.ts";
import { readWords } from "../../cgroup/files.ts";
import { exists } from "../../host/files.ts";
import { sleep } from "../../host/time.ts";
import {
  asUser,
  ensureFixtureDirs,
  ensureUser,
  isDead,
  missingRoot,
  named,
  RANGED_USER,
  rootlessUnavailable,
  SCRATCH,
  syncSource,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, startInCgroup, waitFor } from "../helpers.ts";

const V1: CgroupOptions = {};
const V2: CgroupOptions = { preferV2: true };

const newId = () => `test-${crypto.randomUUID().slice(0, 8)}`;

/** Why limits of `controllers` cannot be tested on this backend here, or undefined. */
function cannotLimit(options: CgroupOptions, ...controllers: string[]): string | undefined {
  const root = missingRoot();
  if (root) return root;
  const host = detectCgroups();
  if (options.preferV2) {
    const unified = host.version === 2 ? host : host.unified;
    if (!unified) return "no cgroup v2 hierarchy is mounted";
    const offered = Deno.readTextFileSync(`${unified.dir}/cgroup.controllers`).trim().split(/\s+/).filter(Boolean);
    const missing = controllers.filter((c) => !offered.includes(c));
    if (missing.length === 0) return undefined;
    const boundToV1 = Deno.readTextFileSync("/proc/cgroups").split("\n")
      .map((line) => line.split("\t"))
      .filter(([name, hierarchy]) => missing.includes(name!) && hierarchy !== "0")
      .map(([name, hierarchy]) => `${name} is bound to v1 hierarchy ${hierarchy}`);
    return `cgroup v2 here offers only "${offered.join(" ")}"; ${boundToV1.join(", ") || `no ${missing.join(", ")}`}`;
  }
  if (host.version === 2) return "this host has no cgroup v1 hierarchies";
  const missing = controllers.filter((c) => !host.hierarchies.some((h) => h.controllers.includes(c)));
  return missing.length ? `no v1 hierarchy for ${missing.join(", ")}` : undefined;
}

/** Runs `body` with a new cgroup and removes the cgroup afterwards, whatever happened. */
async function withCgroup(
  limits: ResourceLimits,
  options: CgroupOptions,
  body: (cgroup: ContainerCgroup) => Promise<void>,
): Promise<void> {
  const cgroup = createContainerCgroup(newId(), limits, options);
  try {
    await body(cgroup);
  } finally {
    await cgroup.remove();
  }
  for (const path of cgroup.paths) assert(!exists(path), `${path} is removed`);
}

const backends = [["v1", V1], ["v2", V2]] as const;

// ---------------------------------------------------------------------------
// Parsing the command line's limits

Deno.test("parseMemory reads sizes as Docker does", () => {
  assertEquals(parseMemory("64m"), 64 * 1024 * 1024);
  assertEquals(parseMemory("1g"), 1024 ** 3);
  assertEquals(parseMemory("1.5G"), 1.5 * 1024 ** 3);
  assertEquals(parseMemory("65536k"), 64 * 1024 * 1024);
  assertEquals(parseMemory("64MiB"), 64 * 1024 * 1024);
  assertEquals(parseMemory("67108864"), 67108864);
  for (const bad of ["", "64x", "m", "-1m", "1e9", "64 mb x"]) {
    let message = "";
    try {
      parseMemory(bad);
    } catch (error) {
      assert(error instanceof InvalidLimitError, `${bad}: an InvalidLimitError`);
      message = error.message;
    }
    assertMatch(message, /^invalid --memory ".*": expected a size such as 64m/, `parseMemory(${JSON.stringify(bad)})`);
    assert(!message.includes("\n"), "one line");
  }
  let tooSmall = "";
  try {
    parseMemory("512k");
  } catch (error) {
    tooSmall = (error as Error).message;
  }
  assertEquals(tooSmall, 'invalid --memory "512k": the minimum is 6m (6291456 bytes)');
});

Deno.test("parseCpus and parsePidsLimit: numbers in range, one-line errors", () => {
  assertEquals(parseCpus("0.5", 2), 0.5);
  assertEquals(parseCpus("2", 2), 2);
  assertEquals(parseCpus(".25", 2), 0.25);
  const messageOf = (f: () => unknown) => {
    try {
      f();
    } catch (error) {
      assert(error instanceof InvalidLimitError, "an InvalidLimitError");
      return error.message;
    }
    return "";
  };
  assertEquals(
    messageOf(() => parseCpus("half", 2)),
    'invalid --cpus "half": expected a number of CPUs such as 0.5 or 2',
  );
  assertEquals(messageOf(() => parseCpus("3", 2)), 'invalid --cpus "3": the range is 0.01 to 2, as there are 2 CPUs');
  assertEquals(messageOf(() => parseCpus("0", 2)), 'invalid --cpus "0": the range is 0.01 to 2, as there are 2 CPUs');
  assertEquals(parsePidsLimit("50"), 50);
  assertEquals(parsePidsLimit("-1"), undefined);
  assertEquals(parsePidsLimit("0"), undefined);
  assertEquals(
    messageOf(() => parsePidsLimit("5.5")),
    'invalid --pids-limit "5.5": expected a whole number of processes (-1 for unlimited)',
  );
});

// ---------------------------------------------------------------------------
// Detection

Deno.test("detectCgroups: a cgroup2-only host, and a container's bind-mounted v1 hierarchy", () => {
  const v2 = detectCgroups(
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
    "0::/user.slice/user-1000.slice/session-3.scope\n",
  );
  assertEquals(v2, {
    version: 2,
    mount: "/sys/fs/cgroup",
    dir: "/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope",
  });
  // A v1 hierarchy mounted from a sub-cgroup (docker without a cgroup namespace), a space in a mount point.
  const v1 = detectCgroups(
    [
      "40 31 0:32 /docker/abc /sys/fs/cgroup/my\\040memory ro - cgroup cgroup rw,memory",
      "41 31 0:33 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct",
    ].join("\n"),
    "5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc/inner\n0::/\n",
  );
  assertEquals(v1, {
    version: 1,
    hierarchies: [
      { controllers: ["memory"], mount: "/sys/fs/cgroup/my memory", dir: "/sys/fs/cgroup/my memory" },
      { controllers: ["cpu", "cpuacct"], mount: "/sys/fs/cgroup/cpu,cpuacct", dir: "/sys/fs/cgroup/cpu,cpuacct/inner" },
    ],
  });
});

Deno.test("ownCgroupProcs: the caller's cgroup.procs in the hierarchy of a container's, v1 and v2", () => {
  const v1 = detectCgroups(
    [
      "40 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
      "41 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
      "42 31 0:34 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
    ].join("\n"),
    "5:memory:/user.slice\n3:cpu,cpuacct:/\n0::/user.slice/session-2.scope\n",
  );
  assertEquals(
    ownCgroupProcs("/sys/fs/cgroup/memory/gcr/abc/cgroup.procs", v1),
    "/sys/fs/cgroup/memory/user.slice/cgroup.procs",
  );
  assertEquals(
    ownCgroupProcs("/sys/fs/cgroup/cpu,cpuacct/gcr/abc/cgroup.procs", v1),
    "/sys/fs/cgroup/cpu,cpuacct/cgroup.procs",
  );
  assertEquals(
    ownCgroupProcs("/sys/fs/cgroup/unified/gcr/abc/cgroup.procs", v1),
    "/sys/fs/cgroup/unified/user.slice/session-2.scope/cgroup.procs",
  );
  // Not under a mount gcr knows (a prefix of a name is not a parent folder).
  assertEquals(ownCgroupProcs("/sys/fs/cgroup/memoryx/gcr/abc/cgroup.procs", v1), undefined);
  const v2 = detectCgroups(
    "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
    "0::/user.slice/user-1000.slice/session-3.scope\n",
  );
  assertEquals(
    ownCgroupProcs("/sys/fs/cgroup/user.slice/gcr/abc/cgroup.procs", v2),
    "/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope/cgroup.procs",
  );
});

Deno.test("everyHierarchy: an OCI container's cgroup in every v1 hierarchy and the hybrid v2 one, as runc's", () => {
  const host = detectCgroups(
    [
      "40 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
      "41 31 0:33 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio",
      "42 31 0:34 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd",
      "43 31 0:35 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
    ].join("\n"),
    "3:name=systemd:/\n2:blkio:/\n1:memory:/\n0::/\n",
  );
  const path = "/gcr-dk-test/abc";
  const plan = planContainerCgroup("abc", { memoryBytes: 1 << 26 }, { host, path, everyHierarchy: true });
  assertEquals(plan.dirs, [
    "/sys/fs/cgroup/memory/gcr-dk-test/abc",
    "/sys/fs/cgroup/blkio/gcr-dk-test/abc",
    "/sys/fs/cgroup/systemd/gcr-dk-test/abc",
    "/sys/fs/cgroup/unified/gcr-dk-test/abc",
  ]);
  const writes = plan.ops.filter((op) => op.op === "write").map((op) => op.path);
  assertIncludes(writes.join(" "), "/sys/fs/cgroup/memory/gcr-dk-test/abc/memory.limit_in_bytes", "the memory limit");
  assert(
    writes.every((p) => p.startsWith("/sys/fs/cgroup/memory/")),
    "limits only where their controller is",
    `${writes}`,
  );
  // Without it (gcr run): the controllers gcr uses, no v2 folder.
  assertEquals(planContainerCgroup("abc", {}, { host, path }).dirs, ["/sys/fs/cgroup/memory/gcr-dk-test/abc"]);
});

Deno.test(
  named("primeMigration leaves the caller where it was and moves nothing into the container's cgroup", missingRoot()),
  async () => {
    const before = Deno.readTextFileSync("/proc/self/cgroup");
    await withCgroup({ pidsLimit: 10 }, {}, async (cgroup) => {
      const procs = `${cgroup.paths[0]}/cgroup.procs`;
      await primeMigration(procs);
      assertEquals(Deno.readTextFileSync("/proc/self/cgroup"), before, "the caller's cgroups");
      assertEquals(Deno.readTextFileSync(procs).trim(), "", "nothing moved into the container's cgroup");
    });
    // Where gcr cannot move itself (a file that is not a cgroup's), it only loses the head start.
    await primeMigration("/nonexistent/gcr/abc/cgroup.procs");
  },
);

Deno.test(named("detectCgroups on this host matches /proc/self/cgroup", missingRoot()), () => {
  const host = detectCgroups();
  const procCgroup = Deno.readTextFileSync("/proc/self/cgroup");
  if (host.version === 2) {
    assertEquals(`0::${host.dir.slice(host.mount.length) || "/"}`, procCgroup.trim(), "v2: the caller's cgroup");
    return;
  }
  // A v1 or hybrid host, as the test machines are (docs/design.md §4).
  for (const controller of ["memory", "cpu", "cpuacct", "pids"]) {
    const h = host.hierarchies.find((h) => h.controllers.includes(controller));
    assert(h, `a v1 hierarchy for ${controller}`, JSON.stringify(host));
    const line = procCgroup.split("\n").find((l) => l.split(":")[1]!.split(",").includes(controller))!;
    const path = line.split(":")[2]!;
    assertEquals(h.dir, path === "/" ? h.mount : h.mount + path, `${controller}: the caller's cgroup folder`);
    assert(exists(`${h.dir}/cgroup.procs`), `${h.dir} is a cgroup`);
  }
  if (host.unified) assert(exists(`${host.unified.dir}/cgroup.controllers`), "the unified mount is cgroup2");
});

// ---------------------------------------------------------------------------
// Create, join, remove

Deno.test(
  named(
    "v1: a cgroup in each real hierarchy with the limits written; remove() leaves nothing",
    cannotLimit(V1, "memory", "cpu", "pids"),
  ),
  async () => {
    const id = newId();
    const cgroup = createContainerCgroup(id, { memoryBytes: 64 << 20, cpus: 0.5, pidsLimit: 50 }, V1);
    try {
      assertEquals(cgroup.version, 1);
      const read = (name: string) => {
        const dir = cgroup.paths.find((p) => exists(`${p}/${name}`));
        assert(dir, `a cgroup folder with ${name}`, cgroup.paths.join("\n"));
        return Deno.readTextFileSync(`${dir}/${name}`).trim();
      };
      for (const path of cgroup.paths) assertMatch(path, new RegExp(`/${GCR_FOLDER}/${id}$`), "gcr/<id>");
      assertEquals(read("memory.limit_in_bytes"), String(64 << 20));
      if (cgroup.paths.some((p) => exists(`${p}/memory.memsw.limit_in_bytes`))) {
        assertEquals(read("memory.memsw.limit_in_bytes"), String(64 << 20), "no swap beyond the limit");
      }
      assertEquals(read("cpu.cfs_period_us"), String(CPU_PERIOD_US));
      assertEquals(read("cpu.cfs_quota_us"), "50000");
      assertEquals(read("pids.max"), "50");
      assert(exists(cgroup.paths.find((p) => p.includes("/cpuacct/"))!), "cpuacct too, for the CPU usage");
      const shown = cgroup.ops.map(showCgroupOp);
      assertIncludes(shown.join("\n"), `/${id}/memory.limit_in_bytes: 67108864`, "what trace shows");
    } finally {
      await cgroup.remove();
    }
    for (const path of cgroup.paths) assert(!exists(path), `${path} is removed`);
    await cgroup.remove(); // twice is fine
  },
);

Deno.test(
  named("remove() kills what is left in the cgroup (a shell and its children), then removes it", missingRoot()),
  async () => {
    const cgroup = createContainerCgroup(newId(), {}, V1);
    let shell: Deno.ChildProcess | undefined;
    try {
      const started = startInCgroup(cgroup, "sh", [
        "-c",
        "read x; for i in 1 2 3; do sleep 60 >/dev/null 2>&1 & done; echo ok; wait",
      ]);
      shell = started.child;
      await started.go();
      const children = await waitFor("three sleeps in the cgroup", () => {
        const pids = new Set(
          cgroup.paths.flatMap((p) => Deno.readTextFileSync(`${p}/cgroup.procs`).trim().split("\n")),
        );
        return pids.size === 4 ? [...pids].map(Number) : undefined;
      });
      await cgroup.remove();
      const status = await shell.status;
      assertEquals(status.signal, "SIGKILL", "the shell was killed");
      for (const pid of children) await waitFor(`pid ${pid} dead`, () => isDead(pid) || undefined);
      for (const path of cgroup.paths) assert(!exists(path), `${path} is removed`);
    } finally {
      await cgroup.remove();
      await shell?.output().catch(() => undefined);
    }
  },
);

Deno.test(named("a cgroup whose process was killed is still removed", missingRoot()), async () => {
  const cgroup = createContainerCgroup(newId(), { pidsLimit: 10 }, V1);
  try {
    const { child } = startInCgroup(cgroup, "sleep", ["60"]);
    child.kill("SIGKILL");
    const { signal } = await child.output();
    assertEquals(signal, "SIGKILL");
  } finally {
    await cgroup.remove();
  }
  for (const path of cgroup.paths) assert(!exists(path), `${path} is removed`);
});

Deno.test(
  named("remove() waits while rmdir says EBUSY (a cgroup below it), then removes it", missingRoot()),
  async () => {
    const cgroup = createContainerCgroup(newId(), { pidsLimit: 10 }, V1);
    const below = `${cgroup.paths[0]}/below`;
    Deno.mkdirSync(below);
    try {
      const removed = cgroup.remove(5000).then(() => "removed", (error: Error) => error.message);
      await sleep(100);
      assert(exists(cgroup.paths[0]!), "still there while a cgroup below it is");
      Deno.removeSync(below);
      assertEquals(await removed, "removed");
    } finally {
      if (exists(below)) Deno.removeSync(below);
      await cgroup.remove();
    }
    for (const path of cgroup.paths) assert(!exists(path), `${path} is removed`);
  },
);

// ---------------------------------------------------------------------------
// Limits, on each backend

for (const [backend, options] of backends) {
  Deno.test(
    named(
      `${backend} memory: an allocation past the limit is OOM-killed and wasOomKilled() says so`,
      cannotLimit(options, "memory"),
    ),
    async () => {
      await withCgroup({ memoryBytes: 64 << 20 }, options, async (cgroup) => {
        // 256 MiB of bytes actually written (a zeroed bytearray would not be touched).
        const { child, go } = startInCgroup(cgroup, "python3", [
          "-c",
          "import sys; sys.stdin.readline(); b = bytearray(b'x') * (256 << 20); print('survived', len(b))",
        ]);
        assert(!cgroup.wasOomKilled(), "nothing killed yet");
        await go();
        const result = await child.output();
        const stdout = new TextDecoder().decode(result.stdout);
        assertEquals(result.signal, "SIGKILL", "killed by the OOM killer", stdout);
        assert(cgroup.wasOomKilled(9), "wasOomKilled()", cgroup.paths.join("\n"));
      });
      // The same allocation well under a limit is not killed.
      await withCgroup({ memoryBytes: 512 << 20 }, options, async (cgroup) => {
        const { child, go } = startInCgroup(cgroup, "python3", [
          "-c",
          "import sys; sys.stdin.readline(); b = bytearray(b'x') * (64 << 20); print('survived', len(b))",
        ]);
        await go();
        const result = await child.output();
        assertEquals(result.code, 0, "runs to the end under a 512m limit");
        assert(!cgroup.wasOomKilled(result.signal === "SIGKILL" ? 9 : null), "not OOM-killed");
      });
    },
  );

  Deno.test(named(`${backend} pids: forks past pids.max=5 fail`, cannotLimit(options, "pids")), async () => {
    await withCgroup({ pidsLimit: 5 }, options, async (cgroup) => {
      const { child, go } = startInCgroup(cgroup, "sh", [
        "-c",
        "read x; for i in $(seq 1 20); do sleep 30 >/dev/null 2>&1 & done; echo done",
      ]);
      await go();
      const result = await child.output();
      const stderr = new TextDecoder().decode(result.stderr);
      assertMatch(stderr, /fork/i, "the shell reports failed forks");
      const pidsDir = cgroup.paths.find((p) => exists(`${p}/pids.max`))!;
      const left = Deno.readTextFileSync(`${pidsDir}/cgroup.procs`).trim().split("\n").filter(Boolean);
      assert(left.length <= 5, `at most 5 processes in the cgroup, found ${left.length}`);
      const events = Deno.readTextFileSync(`${pidsDir}/pids.events`);
      assertMatch(events, /^max [1-9]/m, "pids.events counts the refused forks", events);
      console.log(
        `    ${backend} pids: ${left.length} sleeps left of 20; ${stderr.split("\n")[0]}; pids.events ${events.trim()}`,
      );
      // remove() (in withCgroup) kills the sleeps left behind.
    });
  });

  Deno.test(
    named(`${backend} cpu: a busy loop under cpus=0.5 uses about half a CPU`, cannotLimit(options, "cpu")),
    async () => {
      // Measured from the cgroup's own CPU accounting (v1 cpuacct.usage, v2 cpu.stat
      // usage_usec) over 2 s of wall time. CFS gives 50 ms per 100 ms period, so the
      // expected fraction is 0.50; the band 0.3-0.7 absorbs a loaded 2-CPU VM and the
      // partial periods at both ends of the window.
      const measure = async (limits: ResourceLimits) => {
        let fraction = 0;
        let throttled = "";
        await withCgroup(limits, options, async (cgroup) => {
          const { child, go } = startInCgroup(cgroup, "sh", ["-c", "read x; while :; do :; done"]);
          try {
            await go();
            await sleep(300);
            const [u0, t0] = [cgroup.cpuUsageUs(), performance.now()];
            await sleep(2000);
            const [u1, t1] = [cgroup.cpuUsageUs(), performance.now()];
            fraction = (u1 - u0) / ((t1 - t0) * 1000);
            const cpuDir = cgroup.paths.find((p) => exists(`${p}/cpu.stat`) && !p.includes("/cpuacct/"));
            throttled = cpuDir ? Deno.readTextFileSync(`${cpuDir}/cpu.stat`).match(/nr_throttled \d+/)?.[0] ?? "" : "";
          } finally {
            await cgroup.remove();
            await child.output();
          }
        });
        return { fraction, throttled };
      };
      const limited = await measure({ cpus: 0.5 });
      const free = await measure({});
      console.log(
        `    ${backend} cpu: busy loop used ${limited.fraction.toFixed(3)} CPU under cpus=0.5 (${limited.throttled}),` +
          ` ${free.fraction.toFixed(3)} CPU without a limit`,
      );
      assert(limited.fraction > 0.3 && limited.fraction < 0.7, `0.3 < ${limited.fraction.toFixed(3)} < 0.7 CPU`);
      assertMatch(limited.throttled, /nr_throttled [1-9]/, "CFS throttled the loop");
      assert(
        free.fraction > limited.fraction + 0.15,
        `without a limit the loop uses more: ${free.fraction.toFixed(3)}`,
      );
    },
  );
}

// ---------------------------------------------------------------------------
// cgroup v2, for real, on the cgroup2 mount this host has

/**
 * Disables in `dir`'s cgroup.subtree_control what a test enabled. Best
 * effort: a cgroup that another test run made meanwhile may still use it (EBUSY).
 */
function restoreSubtreeControl(dir: string, before: string): void {
  const now = Deno.readTextFileSync(`${dir}/cgroup.subtree_control`).trim().split(/\s+/).filter(Boolean);
  const added = now.filter((c) => !before.split(/\s+/).includes(c));
  if (added.length === 0 || exists(`${dir}/${GCR_FOLDER}`)) return;
  try {
    Deno.writeTextFileSync(`${dir}/cgroup.subtree_control`, added.map((c) => `-${c}`).join(" "));
  } catch { /* still in use */ }
}

/** The v2 hierarchy, as root. */
function unifiedHere() {
  if (missingRoot()) return undefined;
  const host = detectCgroups();
  return host.version === 2 ? host : host.unified;
}

/** The controllers the v2 root offers its children. */
function offeredOnV2(): string[] {
  const unified = unifiedHere();
  return unified ? readWords(`${unified.mount}/cgroup.controllers`) ?? [] : [];
}

/**
 * A controller for the tests that hand one down to a container's cgroup:
 * hugetlb where v1 holds the rest (hybrid hosts), else the first the v2
 * root offers other than pids (which those tests need to be missing).
 */
function controllerToHandDown(): string | undefined {
  const offered = offeredOnV2();
  return offered.includes("hugetlb") ? "hugetlb" : offered.find((c) => c !== "pids");
}

Deno.test(
  named(
    "v2: a child cgroup with a controller enabled through gcr/, a process moved in, cgroup.kill, rmdir",
    unifiedHere()
      ? (controllerToHandDown() ? undefined : "the cgroup v2 root offers no controller")
      : "no cgroup v2 mount",
  ),
  async () => {
    const unified = unifiedHere()!;
    const extra = [controllerToHandDown()!];
    const subtreeBefore = Deno.readTextFileSync(`${unified.dir}/cgroup.subtree_control`).trim();
    const id = newId();
    const cgroup = createContainerCgroup(id, {}, { ...V2, v2Controllers: extra });
    let child: Deno.ChildProcess | undefined;
    try {
      assertEquals(cgroup.version, 2);
      // Under the caller's cgroup, or the nearest one above it that holds no
      // processes (a cgroup with processes cannot hand out controllers).
      assertEquals(cgroup.paths.length, 1);
      const base = cgroup.paths[0]!.slice(0, -`/${GCR_FOLDER}/${id}`.length);
      assertEquals(cgroup.paths[0], `${base}/${GCR_FOLDER}/${id}`, "gcr/<id>");
      assert(`${unified.dir}/`.startsWith(`${base}/`), `${base} is the caller's cgroup ${unified.dir} or above it`);
      const dir = cgroup.paths[0]!;
      // The controller reached the container's cgroup: enabled in the parent, not in a cgroup with processes.
      const controllers = Deno.readTextFileSync(`${dir}/cgroup.controllers`).trim();
      for (const c of extra) assertIncludes(controllers, c, `${c} is available in the container's cgroup`);
      if (extra.includes("hugetlb")) assert(exists(`${dir}/hugetlb.2MB.max`), "hugetlb's files appear");
      const started = startInCgroup(cgroup, "sh", ["-c", "read x; sleep 0.2 & while :; do :; done"]);
      child = started.child;
      await started.go();
      const procCgroup = Deno.readTextFileSync(`/proc/${child.pid}/cgroup`);
      assertMatch(procCgroup, new RegExp(`^0::.*/${GCR_FOLDER}/${id}$`, "m"), "the process is in the v2 cgroup");
      await sleep(300);
      assert(cgroup.cpuUsageUs() > 50_000, `cpu.stat usage_usec counts the loop: ${cgroup.cpuUsageUs()}`);
      assertEquals(exists(`${dir}/memory.events`), controllers.includes("memory"), "memory.events: with memory only");
      assertEquals(cgroup.wasOomKilled(), false, "nothing was OOM-killed");
      assert(exists(`${dir}/cgroup.kill`), "cgroup.kill (Linux 5.14+)");
      await cgroup.remove();
      assertEquals((await child.status).signal, "SIGKILL", "cgroup.kill killed the loop");
      assert(!exists(dir), `${dir} is removed`);
    } finally {
      await cgroup.remove();
      await child?.output().catch(() => undefined);
      // Put the root's subtree_control back as it was (gcr leaves it enabled for the next container).
      restoreSubtreeControl(unified.mount, subtreeBefore);
    }
  },
);

Deno.test(
  named(
    "v2: a limit whose controller the caller's v2 cgroup lacks is a one-line error naming it, and nothing is made",
    unifiedHere() ? undefined : "no cgroup v2 mount",
  ),
  () => {
    const unified = unifiedHere()!;
    // A cgroup of the test's own, two levels down: the upper one enables no
    // controller for its children, so the lower one has none, whatever the
    // root offers. gcr is told it runs there, as /proc/self/cgroup would say.
    const upper = `gcr-test-lacking-${crypto.randomUUID().slice(0, 8)}`;
    const caller = `${unified.mount}/${upper}/caller`;
    Deno.mkdirSync(caller, { recursive: true });
    try {
      assertEquals(readWords(`${caller}/cgroup.controllers`), [], "the caller's cgroup has no controller");
      const procCgroup = Deno.readTextFileSync("/proc/self/cgroup").replace(/^0::.*$/m, `0::/${upper}/caller`);
      const host = detectCgroups(undefined, procCgroup);
      let message = "";
      try {
        createContainerCgroup(newId(), { memoryBytes: 64 << 20 }, { ...V2, host });
      } catch (error) {
        assert(error instanceof CgroupUnavailableError, `a CgroupUnavailableError: ${error}`);
        message = error.message;
      }
      assertEquals(message, `cannot use cgroup v2: ${caller} lacks the memory controller`);
      assertEquals([...Deno.readDirSync(caller)].filter((e) => e.isDirectory), [], "nothing made");
    } finally {
      Deno.removeSync(caller);
      Deno.removeSync(`${unified.mount}/${upper}`);
    }
  },
);

// ---------------------------------------------------------------------------
// Unit tests of the v2 plan against a fake directory tree. Not the proof that
// v2 limits work (the kernel is not involved): the proof would be the v2 limit
// tests above, ignored on this host.

function fakeV2Tree(owner?: number): string {
  const root = Deno.makeTempDirSync({ prefix: "gcr-fake-cgroup2-" });
  Deno.writeTextFileSync(`${root}/cgroup.controllers`, "cpuset cpu io memory pids\n");
  Deno.writeTextFileSync(`${root}/cgroup.subtree_control`, "\n");
  Deno.writeTextFileSync(`${root}/cgroup.procs`, "");
  Deno.mkdirSync(`${root}/user.slice/me.scope`, { recursive: true });
  for (const dir of ["user.slice", "user.slice/me.scope"]) {
    Deno.writeTextFileSync(`${root}/${dir}/cgroup.controllers`, "cpu memory pids\n");
    Deno.writeTextFileSync(`${root}/${dir}/cgroup.subtree_control`, dir === "user.slice" ? "cpu memory pids\n" : "\n");
    Deno.writeTextFileSync(`${root}/${dir}/cgroup.procs`, dir === "user.slice" ? "" : "4242\n");
  }
  if (owner !== undefined) new Deno.Command("chown", { args: ["-R", String(owner), root] }).outputSync();
  return root;
}

Deno.test("fake-tree unit test: the v2 plan writes memory.max, memory.swap.max, cpu.max, pids.max under the nearest cgroup without processes", () => {
  const root = fakeV2Tree();
  try {
    const host = { version: 2, mount: root, dir: `${root}/user.slice/me.scope` } as const;
    const plan = planContainerCgroup("c1", { memoryBytes: 64 << 20, cpus: 0.5, pidsLimit: 50 }, { host, uid: 0 });
    // me.scope holds gcr itself (no internal processes): user.slice, which holds none, is the base.
    assertEquals(plan.ops.map(showCgroupOp), [
      `mkdir ${root}/user.slice/gcr (if missing)`,
      `write ${root}/user.slice/gcr/cgroup.subtree_control: +memory +cpu +pids`,
      `mkdir ${root}/user.slice/gcr/c1`,
      `write ${root}/user.slice/gcr/c1/memory.max: 67108864`,
      `write ${root}/user.slice/gcr/c1/memory.swap.max: 0 (if the kernel offers it)`,
      `write ${root}/user.slice/gcr/c1/cpu.max: 50000 100000`,
      `write ${root}/user.slice/gcr/c1/pids.max: 50`,
    ]);
    const lines = explainContainerCgroup("c1", { pidsLimit: 5 }, { host, uid: 0 });
    assertEquals(lines.at(-1), `write ${root}/user.slice/gcr/c1/cgroup.procs: <pid>`);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test(named("fake-tree unit test: rootless needs a delegated v2 cgroup, else a typed error", missingRoot()), () => {
  const delegated = fakeV2Tree(12345);
  const notDelegated = fakeV2Tree();
  try {
    const host = (root: string) => ({ version: 2, mount: root, dir: `${root}/user.slice/me.scope` }) as const;
    const plan = planContainerCgroup("c1", { pidsLimit: 5 }, { host: host(delegated), uid: 12345 });
    assertEquals(plan.dirs, [`${delegated}/user.slice/gcr/c1`], "the delegated subtree is used");
    let message = "";
    try {
      planContainerCgroup("c1", { pidsLimit: 5 }, { host: host(notDelegated), uid: 12345 });
    } catch (error) {
      assert(error instanceof CgroupUnavailableError, "a CgroupUnavailableError");
      message = error.message;
    }
    assertMatch(
      message,
      /^resource limits need root or a delegated cgroup v2: .*me\.scope is not delegated to uid 12345/,
    );
  } finally {
    Deno.removeSync(delegated, { recursive: true });
    Deno.removeSync(notDelegated, { recursive: true });
  }
});

Deno.test(
  named(
    "fake-tree unit test: an OCI container's joined controllers are enabled where offered (systemd's delegation lacks cpuset)",
    missingRoot(),
  ),
  () => {
    const root = fakeV2Tree(12345);
    try {
      const host = { version: 2, mount: root, dir: `${root}/user.slice/me.scope` } as const;
      // What commands/oci_cgroup.ts asks for: every controller, for stats, as runc's manager joins them.
      const controllers = ["memory", "cpu", "cpuacct", "pids", "devices", "freezer", "cpuset"];
      const plan = planContainerCgroup("c1", { memoryBytes: 64 << 20 }, {
        host,
        uid: 12345,
        rootless: true,
        controllers,
      });
      assertEquals(plan.ops.map(showCgroupOp).slice(0, 3), [
        `mkdir ${root}/user.slice/gcr (if missing)`,
        `write ${root}/user.slice/gcr/cgroup.subtree_control: +memory +cpu +pids`,
        `mkdir ${root}/user.slice/gcr/c1`,
      ], "memory, cpu and pids, which user.slice offers; not cpuset, which it does not");
      let message = "";
      try {
        planContainerCgroup("c1", { cpusetCpus: "0" }, { host, uid: 12345, rootless: true, controllers });
      } catch (error) {
        assert(error instanceof CgroupUnavailableError, "a CgroupUnavailableError");
        message = error.message;
      }
      assertMatch(message, /lacks the cpuset controller/, "a cpuset limit still needs cpuset");
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  },
);

// ---------------------------------------------------------------------------
// Rootless, for real: a test user on this host's hierarchies

/** Runs the probe below as `user`, from the world-readable source copy; `place` may move its pid first. */
async function probeAs(user: string, args: string[], place?: (pid: number) => void): Promise<Record<string, unknown>> {
  const src = await syncSource();
  const account = await ensureUser(user);
  ensureFixtureDirs();
  const probe = `${SCRATCH}/cgroup_probe_${crypto.randomUUID().slice(0, 8)}.ts`;
  Deno.writeTextFileSync(
    probe,
    `import { createContainerCgroup } from ${JSON.stringify(`${src}/cgroup/container_cgroup.ts`)};
const out: Record<string, unknown> = {};
try {
  createContainerCgroup("probe-" + Deno.pid, { pidsLimit: 5 });
  out.pidsError = "none";
} catch (error) {
  out.pidsError = \`\${(error as Error).name}: \${(error as Error).message}\`;
}
if (Deno.args[0] === "delegated") {
  const cgroup = createContainerCgroup(Deno.args[1]!, {}, { v2Controllers: [Deno.args[2]!] });
  const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
  cgroup.addProcess(child.pid);
  out.paths = cgroup.paths;
  out.childCgroup = Deno.readTextFileSync(\`/proc/\${child.pid}/cgroup\`).split("\\n").find((l) => l.startsWith("0::"));
  out.controllers = Deno.readTextFileSync(\`\${cgroup.paths[0]}/cgroup.controllers\`).trim();
  await cgroup.remove();
  out.childSignal = (await child.status).signal;
}
console.log(JSON.stringify(out));
`,
  );
  Deno.chmodSync(probe, 0o644);
  try {
    const child = new Deno.Command("setpriv", {
      args: asUser(
        account,
        ["sh", "-c", 'read x; exec deno run -A --no-config --no-lock "$0" "$@"', probe, ...args],
        { path: Deno.execPath().replace(/\/[^/]*$/, "") },
      ),
      cwd: SCRATCH,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    place?.(child.pid);
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("go\n"));
    await writer.close();
    const result = await child.output();
    const stdout = new TextDecoder().decode(result.stdout);
    const stderr = new TextDecoder().decode(result.stderr);
    assertEquals(result.code, 0, "the probe runs", `${stdout}\n${stderr}`);
    return JSON.parse(stdout);
  } finally {
    Deno.removeSync(probe);
  }
}

Deno.test(
  named(
    "rootless on a host whose hierarchies belong to root: a one-line error that limits need root or a delegated cgroup v2",
    rootlessUnavailable(),
  ),
  async () => {
    const out = await probeAs(RANGED_USER, []);
    assertMatch(
      String(out.pidsError),
      /^CgroupUnavailableError: resource limits need root or a delegated cgroup v2: [^\n]+$/,
      "the error the CLI prints",
    );
    console.log(`    ${out.pidsError}`);
  },
);

Deno.test(
  named(
    "rootless with a delegated cgroup v2 subtree (as systemd's Delegate=yes makes one): gcr/<id> made, process moved, removed",
    rootlessUnavailable() ??
      (unifiedHere()
        ? (controllerToHandDown() ? undefined : "the cgroup v2 root offers no controller but pids")
        : "no cgroup v2 mount"),
  ),
  async () => {
    const unified = unifiedHere()!;
    const controller = controllerToHandDown()!;
    const account = await ensureUser(RANGED_USER);
    const subtreeBefore = Deno.readTextFileSync(`${unified.mount}/cgroup.subtree_control`).trim();
    // Root's cgroup (as systemd's user@.service is) hands the delegated
    // subtree one controller, whatever the v2 root enables for others; the
    // delegated subtree is owned by the user and holds no processes itself:
    // they live in a leaf below it.
    const parent = `${unified.mount}/gcr-delegation-${crypto.randomUUID().slice(0, 8)}`;
    const delegated = `${parent}/user`;
    const id = newId();
    try {
      Deno.writeTextFileSync(`${unified.mount}/cgroup.subtree_control`, `+${controller}`);
      Deno.mkdirSync(parent);
      Deno.writeTextFileSync(`${parent}/cgroup.subtree_control`, `+${controller}`);
      Deno.mkdirSync(`${delegated}/session`, { recursive: true });
      const chown = new Deno.Command("chown", { args: ["-R", `${account.uid}:${account.gid}`, delegated] })
        .outputSync();
      assert(chown.success, "chown the delegated subtree");
      const out = await probeAs(RANGED_USER, ["delegated", id, controller], (pid) => {
        Deno.writeTextFileSync(`${delegated}/session/cgroup.procs`, String(pid));
      });
      console.log(`    ${JSON.stringify(out)}`);
      assertEquals(
        out.paths,
        [`${delegated}/${GCR_FOLDER}/${id}`],
        "gcr/<id> under the delegated cgroup, not the leaf",
      );
      assertEquals(out.childCgroup, `0::${delegated.slice(unified.mount.length)}/${GCR_FOLDER}/${id}`, "moved in");
      assertEquals(out.controllers, controller, "the controller reached the container's cgroup");
      assertEquals(out.childSignal, "SIGKILL", "remove() killed what was left");
      assert(!exists(`${delegated}/${GCR_FOLDER}/${id}`), "removed");
      assertMatch(
        String(out.pidsError),
        /^CgroupUnavailableError: resource limits need root or a delegated cgroup v2: .*lacks the pids controller$/,
      );
    } finally {
      for (
        const dir of [
          `${delegated}/${GCR_FOLDER}/${id}`,
          `${delegated}/${GCR_FOLDER}`,
          `${delegated}/session`,
          delegated,
          parent,
        ]
      ) {
        await waitFor(`rmdir ${dir}`, () => {
          try {
            Deno.removeSync(dir);
            return true;
          } catch (error) {
            return error instanceof Deno.errors.NotFound ? true : undefined;
          }
        });
      }
      restoreSubtreeControl(unified.mount, subtreeBefore);
    }
  },
);
