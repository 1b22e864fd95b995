/**
 * gcr's exit status: the command's own, 128+N for a signal, 125 for gcr's
 * own failures.
 */
import {
  busyboxRootfs,
  childrenOf,
  debianRootfs,
  debianUnavailable,
  describe,
  gcr,
  missingRoot,
  named,
  ROOTFS_DIR,
  SCRATCH,
  spawnGcr,
} from "../fixtures.ts";
import { assert, assertEquals, assertMatch, lines, waitFor } from "../helpers.ts";

Deno.test(named("`exit 7` in the container: gcr exits 7", missingRoot()), async () => {
  await busyboxRootfs();
  for (const status of [0, 7, 255]) {
    const result = await gcr(["run", "-q", "busybox", "sh", "-c", `exit ${status}`]);
    assertEquals(result.code, status, `exit status for exit ${status}`, describe(result));
    assertEquals(result.stderr, "", "nothing on stderr", describe(result));
  }
});

Deno.test(named("the container's process killed by SIGKILL from the host: gcr exits 137", missingRoot()), async () => {
  await busyboxRootfs();
  const running = await spawnGcr(["run", "-q", "busybox", "sh", "-c", "echo ready; while :; do sleep 0.1; done"]);
  await running.waitForStdout(/ready\n/);
  const children = await waitFor("gcr's child", () => {
    const found = childrenOf(running.pid);
    return found.length ? found : undefined;
  });
  assertEquals(children.length, 1, "gcr has one child: the container's first process");
  Deno.kill(children[0]!, "SIGKILL");
  const result = await running.finish();
  assertEquals(result.code, 137, "exit status: 128 + SIGKILL (9)", describe(result));
  assertEquals(result.signal, null, "gcr itself exited normally", describe(result));
});

Deno.test(named("an unknown option: exit 125 and a one-line message", missingRoot()), async () => {
  const result = await gcr(["run", "--bogus", "busybox", "true"]);
  assertEquals(result.code, 125, "exit status", describe(result));
  assertEquals(lines(result.stderr).length, 1, "stderr is one line", describe(result));
  assertMatch(result.stderr, /^gcr: unknown option --bogus\b/, "stderr names the option", describe(result));
  assertEquals(result.stdout, "", "nothing on stdout", describe(result));

  const noImage = await gcr(["run"]);
  assertEquals(noImage.code, 125, "exit status without an image", describe(noImage));
  assertMatch(noImage.stderr, /^gcr: missing <image>/, "stderr says the image is missing", describe(noImage));
  assertEquals(lines(noImage.stderr).length, 1, "stderr is one line", describe(noImage));
});

Deno.test(
  named('a missing image: exit 125 and `no rootfs "ubuntu" in …/ (found: busybox, debian)`', debianUnavailable()),
  async () => {
    await busyboxRootfs();
    await debianRootfs();
    // ubuntu looks like an image reference: gcr tries to pull it, through a proxy that is
    // not there (so the test never reaches Docker Hub), and appends why that failed.
    const result = await gcr(["run", "-q", "ubuntu", "true"], {
      env: { HTTPS_PROXY: "http://127.0.0.1:9", https_proxy: "http://127.0.0.1:9", GCR_CACHE: `${SCRATCH}/pull-cache` },
      timeoutMs: 60_000,
    });
    assertEquals(result.code, 125, "exit status", describe(result));
    assertEquals(lines(result.stderr).length, 1, "stderr is one line", describe(result));
    assert(
      result.stderr.startsWith(
        `gcr: no rootfs "ubuntu" in ${ROOTFS_DIR}/ (found: busybox, debian): cannot pull ubuntu: `,
      ),
      "stderr keeps the missing-rootfs error and appends the pull's",
      describe(result),
    );
  },
);
