/**
 * `gcr run --memory/--cpus/--pids-limit`: the limits hold inside a real
 * container, gcr says when the kernel OOM-killed it, and its cgroup is gone
 * afterwards.
 */
import {
  busyboxRootfs,
  describe,
  gcr,
  missingRoot,
  named,
  RANGED_USER,
  rootlessUnavailable,
  SCRATCH,
  spawnGcr,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, lines } from "../helpers.ts";
import { sleep } from "../../host/time.ts";

/** Every cgroup folder gcr made for container `id` (any container with `*`), in any hierarchy. */
function cgroupFoldersOf(id: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let entries: Deno.DirEntry[] = [];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory) continue;
      const path = `${dir}/${entry.name}`;
      if ((entry.name === id || id === "*") && dir.endsWith("/gcr")) found.push(path);
      else walk(path, depth + 1);
    }
  };
  walk("/sys/fs/cgroup", 0);
  return found;
}

Deno.test(
  named("--memory 32m: an allocation past it is OOM-killed, gcr says so and exits 137", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcr([
      "run",
      "-q",
      "--hostname",
      "oomtest",
      "--memory",
      "32m",
      "busybox",
      "sh",
      "-c",
      "echo start; exec dd if=/dev/zero of=/dev/null bs=200M count=1",
    ]);
    assertEquals(result.code, 137, "exit status", describe(result));
    assertEquals(lines(result.stdout), ["start"], "dd never finished", describe(result));
    assertMatch(result.stderr, /^gcr: the container was OOM-killed: .*--memory limit \(33554432 bytes\)$/m, "message");
  },
);

Deno.test(
  named("--pids-limit 5: forking past it fails inside, and gcr leaves no cgroup behind", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcr([
      "run",
      "--pids-limit",
      "5",
      "busybox",
      "sh",
      "-c",
      "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null; for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait",
    ]);
    assertIncludes(result.stderr, "can't fork", "the shell could not fork", describe(result));
    const id = assertMatch(result.stderr, /running as pid: 1 \| uid: 0 \| gid: 0/, "log line", describe(result));
    assert(id, "ran");
    const hostname = await gcr(["run", "-q", "--pids-limit", "5", "busybox", "hostname"]);
    const container = hostname.stdout.trim();
    assertMatch(container, /^[0-9a-f]{12}$/, "container id", describe(hostname));
    assertEquals(cgroupFoldersOf(container), [], "cgroup folders left for the container");
  },
);

Deno.test(
  named("--memory and --cpus are written where the kernel reads them, seen from inside", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcr([
      "run",
      "-q",
      "--memory",
      "64m",
      "--cpus",
      "0.5",
      "busybox",
      "sh",
      "-c",
      // The cgroup namespace makes the container's own cgroup its root; v1
      // hierarchies are not mounted inside, so read through /proc/self/cgroup.
      "grep -E ':(memory|cpu,cpuacct|cpu|pids):' /proc/self/cgroup",
    ]);
    assertEquals(result.code, 0, "exit status", describe(result));
    for (const line of lines(result.stdout)) {
      assertMatch(line, /:\/$/, "the container sees its cgroup as /", describe(result));
    }
  },
);

Deno.test(named("bad limits are refused with one line and exit 125", missingRoot()), async () => {
  await busyboxRootfs();
  for (const [flag, value] of [["--memory", "lots"], ["--cpus", "-1"], ["--pids-limit", "x"]] as const) {
    const result = await gcr(["run", "-q", flag, value, "busybox", "true"]);
    assertEquals(result.code, 125, `exit status for ${flag} ${value}`, describe(result));
    assertEquals(lines(result.stderr).length, 1, `one line for ${flag} ${value}`, describe(result));
  }
});

Deno.test(named("explain shows the cgroup it would make, and makes none", missingRoot()), async () => {
  await busyboxRootfs();
  const result = await gcr(["explain", "run", "--memory", "64m", "busybox", "sh"]);
  assertEquals(result.code, 0, "exit status", describe(result));
  assertMatch(
    result.stdout,
    /\(before clone\) write \S+\/memory\.limit_in_bytes: 67108864/,
    "the limit",
    describe(result),
  );
  const id = assertMatch(result.stdout, /gcr\/([0-9a-f]{12})\/cgroup\.procs/, "the cgroup path", describe(result))[1]!;
  assertEquals(cgroupFoldersOf(id), [], "no cgroup was made");
});

Deno.test(
  named("rootless without a delegated cgroup v2: limits are refused with one line, exit 125", rootlessUnavailable()),
  async () => {
    await busyboxRootfs();
    const result = await gcr(["run", "-q", "--memory", "64m", "busybox", "true"], { user: RANGED_USER });
    assertEquals(result.code, 125, "exit status", describe(result));
    const [line, ...rest] = lines(result.stderr);
    assertEquals(rest, [], "one line", describe(result));
    assertMatch(line ?? "", /^gcr: resource limits need root or a delegated cgroup v2/, "message", describe(result));
  },
);

Deno.test(
  named("rootless with --limits-optional: says it runs without limits, and runs", rootlessUnavailable()),
  async () => {
    await busyboxRootfs();
    const result = await gcr(["run", "-q", "--rm", "--limits-optional", "--memory", "64m", "busybox", "echo", "ran"], {
      user: RANGED_USER,
    });
    assertEquals(result.code, 0, "exit status", describe(result));
    assertEquals(result.stdout, "ran\n", "the command ran", describe(result));
    assertMatch(
      result.stderr,
      /^gcr: running without limits \(--limits-optional\): resource limits need root/m,
      "notice",
    );
  },
);

/** A container cgroup folder that was not in `before`, once one appears (polled every millisecond). */
async function newCgroupFolder(before: ReadonlySet<string>, timeoutMs: number): Promise<string | undefined> {
  const parents = lines(Deno.readTextFileSync("/proc/self/cgroup")).flatMap((line) => {
    const [, controllers = "", path = "/"] = line.split(":");
    const hierarchy = controllers ? controllers.replace(/^name=/, "") : "unified";
    return [`/sys/fs/cgroup/${hierarchy}${path === "/" ? "" : path}/gcr`];
  });
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    for (const parent of parents) {
      try {
        for (const entry of Deno.readDirSync(parent)) {
          const path = `${parent}/${entry.name}`;
          if (entry.isDirectory && !before.has(path)) return path;
        }
      } catch { /* not made yet */ }
    }
    await sleep(1);
  }
  return undefined;
}

Deno.test(
  named("gcr run SIGKILLed as it makes its cgroup: rm -f and prune leave no cgroup folder", missingRoot()),
  async () => {
    await busyboxRootfs();
    // A state folder of this test's own, so prune touches only its containers.
    const state = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "kill-state-" });
    const env = { GCR_STATE: state };
    const before = new Set(cgroupFoldersOf("*"));
    try {
      // Killed the moment its first cgroup folder appears, while it makes the rest.
      for (let round = 0; round < 10; round++) {
        const running = await spawnGcr(
          ["run", "-q", "--memory", "32m", "--pids-limit", "50", "busybox", "sleep", "5"],
          {
            env,
          },
        );
        const seen = await newCgroupFolder(new Set(cgroupFoldersOf("*")), 10_000);
        running.kill("SIGKILL");
        await running.finish().catch(() => undefined);
        assert(seen, "gcr made a cgroup folder", running.stderr);
      }
      const listed = await gcr(["ps", "-a", "-q"], { env });
      for (const id of lines(listed.stdout)) await gcr(["rm", "-f", id], { env });
      const pruned = await gcr(["prune"], { env });
      assertEquals(pruned.code, 0, "prune", describe(pruned));
      const left = cgroupFoldersOf("*").filter((path) => !before.has(path));
      assertEquals(left, [], "cgroup folders no command cleans up");
    } finally {
      for (const path of cgroupFoldersOf("*").filter((path) => !before.has(path))) {
        try {
          Deno.removeSync(path);
        } catch { /* busy or gone */ }
      }
      Deno.removeSync(state, { recursive: true });
    }
  },
);
