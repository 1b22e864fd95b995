/**
 * `gcr run`'s hardening flags, end to end: Docker's default capability set
 * and a seccomp filter by default, --cap-add/--cap-drop, --user,
 * --security-opt.
 */
import { busyboxRootfs, debianRootfs, debianUnavailable, describe, gcr, missingRoot, named } from "../fixtures.ts";
import { assertEquals, assertIncludes, assertMatch, lines } from "../helpers.ts";

const DOCKER_DEFAULT = "00000000a80425fb";

function statusField(stdout: string, field: string): string | undefined {
  return stdout.match(new RegExp(`^${field}:\\s*(\\S+)`, "m"))?.[1];
}

Deno.test(
  named("by default: Docker's capability set, no_new_privs, a seccomp filter, masked /proc/keys", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcr([
      "run",
      "-q",
      "busybox",
      "sh",
      "-c",
      "cat /proc/self/status; echo keys=$(wc -c < /proc/keys); unshare -U true; echo unshare=$?; echo x > /proc/sys/kernel/ns_last_pid; echo sysctl=$?",
    ]);
    assertEquals(result.code, 0, "exit status", describe(result));
    for (const field of ["CapBnd", "CapEff", "CapPrm"]) {
      assertEquals(statusField(result.stdout, field), DOCKER_DEFAULT, field, describe(result));
    }
    assertEquals(statusField(result.stdout, "CapInh"), "0000000000000000", "CapInh", describe(result));
    assertEquals(statusField(result.stdout, "NoNewPrivs"), "1", "NoNewPrivs", describe(result));
    assertEquals(statusField(result.stdout, "Seccomp"), "2", "Seccomp (filter mode)", describe(result));
    assertIncludes(result.stdout, "keys=0\n", "/proc/keys is masked", describe(result));
    assertIncludes(result.stdout, "unshare=1\n", "a new user namespace is refused", describe(result));
    assertIncludes(result.stdout, "sysctl=1\n", "/proc/sys is read-only", describe(result));
  },
);

Deno.test(named("--cap-add, --cap-drop and --security-opt change what the command gets", missingRoot()), async () => {
  await busyboxRootfs();
  const added = await gcr([
    "run",
    "-q",
    "--cap-add",
    "NET_ADMIN",
    "--cap-drop",
    "chown",
    "busybox",
    "sh",
    "-c",
    "grep CapEff /proc/self/status; chown 1 /tmp; echo chown=$?",
  ]);
  assertMatch(added.stdout, /CapEff:\s*00000000a80435fa/, "NET_ADMIN added, CHOWN dropped", describe(added));
  assertIncludes(added.stdout, "chown=1\n", "chown refused", describe(added));
  const unconfined = await gcr([
    "run",
    "-q",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "no-new-privileges=false",
    "busybox",
    "sh",
    "-c",
    "grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status",
  ]);
  assertMatch(unconfined.stdout, /NoNewPrivs:\s*0/, "no_new_privs off", describe(unconfined));
  assertMatch(unconfined.stdout, /Seccomp:\s*0/, "no filter", describe(unconfined));
  const bad = await gcr(["run", "-q", "--cap-add", "NET_ADMN", "busybox", "true"]);
  assertEquals(bad.code, 125, "unknown capability: exit status", describe(bad));
  assertEquals(lines(bad.stderr).length, 1, "one line", describe(bad));
});

Deno.test(named("--user runs the command as a user of the image, with its HOME", debianUnavailable()), async () => {
  await debianRootfs();
  const result = await gcr(["run", "-q", "--user", "nobody", "debian", "sh", "-c", "id; echo HOME=$HOME"]);
  assertEquals(result.code, 0, "exit status", describe(result));
  assertEquals(
    lines(result.stdout),
    ["uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)", "HOME=/nonexistent"],
    "id and HOME",
    describe(result),
  );
  const missing = await gcr(["run", "-q", "--user", "carol", "debian", "true"]);
  assertEquals(missing.code, 125, "unknown user", describe(missing));
});
