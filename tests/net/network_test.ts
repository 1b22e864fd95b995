/**
 * Networking: by default a namespace of its own with only loopback, up;
 * with --net host the host's interfaces.
 */
import { busyboxRootfs, describe, gcrOk, missingRoot, named, needs, run } from "../fixtures.ts";
import { assert, assertEquals, assertMatch, assertNotEquals, lines } from "../helpers.ts";

/** Interface names from `ip -o link` output (`2: eth0@if3: <…>` → eth0). */
function interfaceNames(output: string): string[] {
  return lines(output).map((line) => line.split(": ")[1]?.split("@")[0] ?? "").filter(Boolean).sort();
}

Deno.test(named("default --net none: `ip addr` shows only lo, UP, with 127.0.0.1", missingRoot()), async () => {
  await busyboxRootfs();
  const result = await gcrOk(["run", "-q", "busybox", "ip", "addr"]);
  const heads = lines(result.stdout).filter((line) => /^\d+: /.test(line));
  assertEquals(heads.length, 1, "exactly one interface", describe(result));
  assertMatch(heads[0]!, /^1: lo: <[^>]*\bUP\b[^>]*>/, "lo is up", describe(result));
  assertMatch(result.stdout, /inet 127\.0\.0\.1\/8 /, "lo has 127.0.0.1", describe(result));
  const ns = await gcrOk(["run", "-q", "busybox", "readlink", "/proc/self/ns/net"]);
  assertNotEquals(ns.stdout.trim(), Deno.readLinkSync("/proc/self/ns/net"), "a network namespace of its own");
  // Loopback works: a TCP listener on 127.0.0.1 inside receives what a client sends it.
  const talk = await gcrOk([
    "run",
    "-q",
    "busybox",
    "sh",
    "-c",
    "nc -l -p 7777 127.0.0.1 > /tmp/got & " +
    "for i in 1 2 3 4 5 6 7 8 9 10; do echo ping | nc 127.0.0.1 7777 2>/dev/null && break; sleep 0.2; done; " +
    "wait; cat /tmp/got",
  ]);
  assertEquals(talk.stdout, "ping\n", "a message over 127.0.0.1 inside", describe(talk));
});

Deno.test(named("--net host: the container sees the host's interfaces", needs("ip")), async () => {
  await busyboxRootfs();
  const host = await run("ip", ["-o", "link"]);
  assertEquals(host.code, 0, "ip -o link on the host", describe(host));
  const result = await gcrOk(["run", "-q", "--net", "host", "busybox", "ip", "-o", "link"]);
  assertEquals(interfaceNames(result.stdout), interfaceNames(host.stdout), "interface names", describe(result));
  assert(interfaceNames(host.stdout).length > 1, "the host has more than lo (else this test shows nothing)");
  const ns = await gcrOk(["run", "-q", "--net", "host", "busybox", "readlink", "/proc/self/ns/net"]);
  assertEquals(ns.stdout.trim(), Deno.readLinkSync("/proc/self/ns/net"), "the host's network namespace", describe(ns));
  // The host's /sys is bound with its submounts (cgroup, …): all must be read-only.
  const sys = await gcrOk([
    "run",
    "-q",
    "--net",
    "host",
    "busybox",
    "sh",
    "-c",
    "for d in /sys /sys/fs/cgroup; do " +
    "if touch $d/gcr-test 2>/dev/null; then rm -f $d/gcr-test; echo $d:rw; else echo $d:ro; fi; done",
  ]);
  assertEquals(
    lines(sys.stdout),
    ["/sys:ro", "/sys/fs/cgroup:ro"],
    "/sys stays read-only with --net host",
    describe(sys),
  );
});
