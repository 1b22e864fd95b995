/**
 * gcr's two log lines on stderr, in the Go original's format, and -q.
 */
import { busyboxRootfs, describe, gcr, missingRoot, named } from "../fixtures.ts";
import { assert, assertEquals, assertMatch, lines } from "../helpers.ts";

const LINE = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2}) running as pid: (\d+) \| uid: (\d+) \| gid: (\d+)$/;

Deno.test(
  named(
    "stderr shows `running as pid: <gcr's pid> | uid | gid` of the caller, then pid 1, uid 0, gid 0",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const started = Date.now();
    const result = await gcr(["run", "busybox", "sh", "-c", "echo out"]);
    assertEquals(result.code, 0, "exit status", describe(result));
    assertEquals(result.stdout, "out\n", "the command's stdout is untouched", describe(result));
    const logged = lines(result.stderr);
    assertEquals(logged.length, 2, "exactly two log lines on stderr", describe(result));

    const first = assertMatch(logged[0]!, LINE, "first log line format", describe(result));
    const [, year, month, day, hour, minute, second, pid, uid, gid] = first.map(Number);
    const when = new Date(year!, month! - 1, day!, hour, minute, second).getTime();
    assert(Math.abs(when - started) < 120_000, `log time ${logged[0]} should be now (local time)`, describe(result));
    assert(Number.isInteger(pid) && pid! > 0, "pid is a positive integer", describe(result));
    // The gcr script execs deno, so the process the test started is gcr itself.
    assertEquals(pid, result.pid, "the first line shows gcr's own pid", describe(result));
    assertEquals(uid, Deno.uid(), "the first line shows the caller's uid", describe(result));
    assertEquals(gid, Deno.gid(), "the first line shows the caller's gid", describe(result));

    const second2 = assertMatch(logged[1]!, LINE, "second log line format", describe(result));
    assertEquals(second2.slice(7).map(Number), [1, 0, 0], "the second line: pid 1, uid 0, gid 0", describe(result));
  },
);

Deno.test(named("-q silences both log lines but not the command's output", missingRoot()), async () => {
  await busyboxRootfs();
  for (const flag of ["-q", "--quiet"]) {
    const result = await gcr(["run", flag, "busybox", "sh", "-c", "echo out; echo err >&2"]);
    assertEquals(result.code, 0, "exit status", describe(result));
    assertEquals(result.stdout, "out\n", `stdout with ${flag}`, describe(result));
    assertEquals(result.stderr, "err\n", `stderr with ${flag}: only the command's own`, describe(result));
  }
});
