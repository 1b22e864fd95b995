/**
 * `gcr run --init`: a real init is pid 1, so signals stop the command at
 * once and orphans are reaped; and every container gets 1024 open files.
 */
import { busyboxRootfs, describe, gcr, missingPrograms, missingRoot, named, spawnGcr } from "../fixtures.ts";
import { assertEquals, assertIncludes, lines } from "../helpers.ts";

Deno.test(
  named("--init: the init is pid 1 and the command its child", missingRoot() ?? missingPrograms("catatonit")),
  async () => {
    await busyboxRootfs();
    const result = await gcr(["run", "-q", "--init", "busybox", "sh", "-c", "echo $$; tr '\\0' ' ' < /proc/1/cmdline"]);
    assertEquals(result.code, 0, "exit status", describe(result));
    const [pid, init] = lines(result.stdout);
    assertEquals(pid, "2", "the command's pid", describe(result));
    assertIncludes(init ?? "", "/dev/init -- sh -c", "pid 1's command line", describe(result));
  },
);

Deno.test(
  named(
    "--init: SIGTERM to gcr stops `sleep 100` at once (without --init, pid 1 would ignore it)",
    missingRoot() ?? missingPrograms("catatonit"),
  ),
  async () => {
    await busyboxRootfs();
    const running = await spawnGcr(["run", "-q", "--init", "busybox", "sh", "-c", "echo ready; exec sleep 100"]);
    await running.waitForStdout(/ready\n/);
    const started = performance.now();
    running.kill("SIGTERM");
    const result = await running.finish();
    const took = performance.now() - started;
    assertEquals(result.code, 143, "exit status: killed by SIGTERM", describe(result));
    if (took > 5000) throw new Error(`gcr took ${took.toFixed(0)} ms to stop after SIGTERM`);
  },
);

Deno.test(named("open files are limited to 1024, soft and hard", missingRoot()), async () => {
  await busyboxRootfs();
  const result = await gcr(["run", "-q", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"]);
  assertEquals(lines(result.stdout), ["1024", "1024"], "ulimit -n, -Hn", describe(result));
});
