/**
 * `gcr run --init`: a real init is pid 1, so signals stop the command at
 * once and orphans are reaped; and every container gets 1024 open files.
 */
import { busyboxRootfs, describe, gcr, missingPrograms, missingRoot, named, spawnGcr } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, lines } from "../helpers.ts";

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
    assert(took < 30_000, `stopped long before sleep 100 would end: ${took.toFixed(0)} ms after SIGTERM`);
  },
);

/**
 * A process whose parent dies is handed to pid 1, which must wait for it or
 * it stays a zombie, holding its pid, until the container ends. The same
 * command runs with and without --init: pid 1 is then catatonit, or `sleep`
 * (which never waits), so the second run shows what the first prevents.
 */
Deno.test(
  named("--init: an orphan is handed to pid 1 and reaped when it exits", missingRoot() ?? missingPrograms("catatonit")),
  async () => {
    await busyboxRootfs();
    const observer = [
      "sh -c 'sleep 0.3 & echo $!' > /tmp/orphan", // the inner sh exits at once: its sleep is orphaned
      "orphan=$(cat /tmp/orphan)",
      `echo "parent $(sed -n 's/^PPid:[[:space:]]*//p' /proc/$orphan/status)"`,
      "sleep 1",
      `if [ -e /proc/$orphan ]; then echo "left $(cut -d' ' -f3 /proc/$orphan/stat)"; else echo reaped; fi`,
    ].join("; ");
    const command = ["busybox", "sh", "-c", 'sh -c "$0" & exec sleep 2', observer];
    const withInit = await gcr(["run", "-q", "--init", ...command]);
    assertEquals(withInit.code, 0, "exit status", describe(withInit));
    assertEquals(
      lines(withInit.stdout),
      ["parent 1", "reaped"],
      "--init: catatonit reaped the orphan",
      describe(withInit),
    );
    const without = await gcr(["run", "-q", ...command]);
    assertEquals(lines(without.stdout), ["parent 1", "left Z"], "without --init: a zombie", describe(without));
  },
);

Deno.test(named("open files are limited to 1024, soft and hard", missingRoot()), async () => {
  await busyboxRootfs();
  const result = await gcr(["run", "-q", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"]);
  assertEquals(lines(result.stdout), ["1024", "1024"], "ulimit -n, -Hn", describe(result));
});
