/**
 * Signals sent to gcr reach the container's first process; a gcr killed
 * outright takes its container with it.
 */
import {
  busyboxRootfs,
  childrenOf,
  describe,
  isDead,
  liveProcessesInPidNamespace,
  missingRoot,
  named,
  spawnGcr,
} from "../fixtures.ts";
import { assertEquals, assertIncludes, waitFor } from "../helpers.ts";

for (const signal of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] as const) {
  const name = signal.slice(3);
  Deno.test(
    named(
      `${signal} sent to gcr reaches the container: its trap runs and gcr exits with the trap's status`,
      missingRoot(),
    ),
    async () => {
      await busyboxRootfs();
      const running = await spawnGcr([
        "run",
        "-q",
        "busybox",
        "sh",
        "-c",
        `trap "echo got ${name}; exit 3" ${name}; echo ready; while :; do sleep 0.1; done`,
      ]);
      await running.waitForStdout(/ready\n/);
      running.kill(signal);
      const result = await running.finish();
      assertEquals(result.code, 3, "gcr's exit status is the trap's", describe(result));
      assertEquals(result.signal, null, `gcr itself must not die of ${signal}`, describe(result));
      assertIncludes(result.stdout, `got ${name}\n`, "the container's trap ran", describe(result));
    },
  );
}

Deno.test(named("gcr killed by SIGKILL: the container dies with it within two seconds", missingRoot()), async () => {
  await busyboxRootfs();
  const running = await spawnGcr(["run", "-q", "busybox", "sh", "-c", "echo ready; while :; do sleep 0.1; done"]);
  await running.waitForStdout(/ready\n/);
  const [child] = await waitFor("gcr's child", () => {
    const found = childrenOf(running.pid);
    return found.length ? found : undefined;
  });
  const pidNamespace = Deno.readLinkSync(`/proc/${child}/ns/pid`);
  running.kill("SIGKILL");
  const result = await running.finish();
  assertEquals(result.signal, "SIGKILL", "gcr was killed", describe(result));
  // Dead means gone or a zombie: the orphan is reaped by the host's init, which may take its time.
  await waitFor(`the container's first process (host pid ${child}) to die`, () => isDead(child!) || undefined, 2000);
  await waitFor(
    `every process in the container's PID namespace ${pidNamespace} to die`,
    () => liveProcessesInPidNamespace(pidNamespace).length === 0 || undefined,
    2000,
  );
});
