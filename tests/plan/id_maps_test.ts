/**
 * Id maps: rootless with and without a subordinate range, and as root.
 * Rootless runs go through `setpriv` as the test users, from the
 * world-readable source copy (see fixtures.ts).
 */
import {
  busyboxRootfs,
  debianRootfs,
  debianUnavailable,
  describe,
  ensureUser,
  gcr,
  gcrOk,
  missingPrograms,
  missingRoot,
  named,
  RANGED_USER,
  rootlessUnavailable,
  SOLO_USER,
  subRange,
} from "../fixtures.ts";
import { assert, assertEquals, assertMatch, assertNotEquals, assertNotIncludes, lines } from "../helpers.ts";

/** Prints the maps and setgroups, one section per `--` line, then ids. */
const SHOW_MAPS = "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; cat /proc/self/setgroups; " +
  "echo --; id -u; id -g";

function sections(stdout: string): string[][] {
  const out: string[][] = [[]];
  for (const line of lines(stdout)) {
    if (line === "--") out.push([]);
    else out.at(-1)!.push(line.trim().split(/\s+/).join(" "));
  }
  return out;
}

const LOG = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} running as pid: (\d+) \| uid: (\d+) \| gid: (\d+)$/;

/** Why root here does not own every id (the tests run in a nested user namespace), or undefined. */
function nestedUserNamespace(): string | undefined {
  const map = Deno.readTextFileSync("/proc/self/uid_map").trim().split(/\s+/).join(" ");
  return map === "0 0 4294967295" ? undefined : `the tests run in a nested user namespace (uid_map ${map})`;
}

const first = (...reasons: (string | undefined)[]) => reasons.find((r) => r !== undefined);

Deno.test(
  named(
    "rootless without a subordinate range (gcrsolo): uid_map `0 <uid> 1`, setgroups deny, root inside",
    rootlessUnavailable(),
  ),
  async () => {
    await busyboxRootfs();
    const user = await ensureUser(SOLO_USER);
    const result = await gcr(["run", "busybox", "sh", "-c", SHOW_MAPS], { user: SOLO_USER });
    assertEquals(result.code, 0, "exit status", describe(result));
    const [uidMap, gidMap, setgroups, ids] = sections(result.stdout);
    assertEquals(uidMap, [`0 ${user.uid} 1`], "/proc/self/uid_map inside", describe(result));
    assertEquals(gidMap, [`0 ${user.gid} 1`], "/proc/self/gid_map inside", describe(result));
    assertEquals(setgroups, ["deny"], "/proc/self/setgroups inside", describe(result));
    assertEquals(ids, ["0", "0"], "id -u and id -g inside", describe(result));

    const logged = lines(result.stderr);
    assertEquals(logged.length, 2, "two log lines", describe(result));
    const outer = assertMatch(logged[0]!, LOG, "first log line", describe(result)).slice(1).map(Number);
    assertEquals(outer, [result.pid, user.uid, user.gid], "first log line: gcr's pid, the user's uid and gid");
    const inner = assertMatch(logged[1]!, LOG, "second log line", describe(result)).slice(1).map(Number);
    assertEquals(inner, [1, 0, 0], "second log line: pid 1, uid 0, gid 0", describe(result));
  },
);

Deno.test(
  named(
    "rootless with a subordinate range (gcrtest): uid_map maps 0 to the user and 1… to the range",
    first(rootlessUnavailable(), missingPrograms("newuidmap", "newgidmap")),
  ),
  async () => {
    await busyboxRootfs();
    const user = await ensureUser(RANGED_USER);
    const uidRange = subRange("/etc/subuid", user)!;
    const gidRange = subRange("/etc/subgid", user)!;
    assert(uidRange && gidRange, `${RANGED_USER} should have subordinate ranges`);
    const result = await gcr(["run", "-q", "busybox", "sh", "-c", SHOW_MAPS], { user: RANGED_USER });
    assertEquals(result.code, 0, "exit status", describe(result));
    const [uidMap, gidMap, setgroups, ids] = sections(result.stdout);
    assertEquals(
      uidMap,
      [`0 ${user.uid} 1`, `1 ${uidRange.start} ${Math.min(uidRange.count, 65535)}`],
      "/proc/self/uid_map inside",
      describe(result),
    );
    assertEquals(
      gidMap,
      [`0 ${user.gid} 1`, `1 ${gidRange.start} ${Math.min(gidRange.count, 65535)}`],
      "/proc/self/gid_map inside",
      describe(result),
    );
    assertEquals(setgroups, ["allow"], "/proc/self/setgroups inside", describe(result));
    assertEquals(ids, ["0", "0"], "id -u and id -g inside", describe(result));
  },
);

const SWITCH_USER = ["setpriv", "--reuid=100", "--regid=100", "--clear-groups", "id", "-u"];

Deno.test(
  named(
    "rootless with a subordinate range (gcrtest): a program can switch to uid 100 in the Debian rootfs",
    first(rootlessUnavailable(), missingPrograms("newuidmap", "newgidmap"), debianUnavailable()),
  ),
  async () => {
    await debianRootfs();
    const result = await gcr(["run", "-q", "debian", ...SWITCH_USER], { user: RANGED_USER, timeoutMs: 60_000 });
    assertEquals(result.code, 0, "setpriv inside should succeed", describe(result));
    assertEquals(result.stdout, "100\n", "id -u after setpriv --reuid=100", describe(result));
  },
);

Deno.test(
  named(
    "rootless without a subordinate range (gcrsolo): switching to uid 100 fails (only uid 0 is mapped)",
    first(rootlessUnavailable(), debianUnavailable()),
  ),
  async () => {
    await debianRootfs();
    const result = await gcr(["run", "-q", "debian", ...SWITCH_USER], { user: SOLO_USER, timeoutMs: 60_000 });
    assertNotEquals(result.code, 0, "setpriv --reuid=100 must fail with a single-id map", describe(result));
    assertNotIncludes(result.stdout, "100", "id -u must not have run as 100", describe(result));
    assertMatch(result.stderr, /setpriv: .*(setresuid|Invalid argument)/, "setpriv's error", describe(result));
  },
);

Deno.test(
  named(
    "as root, container ids 0-65535 are the host's: uid_map and gid_map are `0 0 65536`, setgroups allow",
    missingRoot() ?? nestedUserNamespace(),
  ),
  async () => {
    await busyboxRootfs();
    const result = await gcrOk(["run", "-q", "busybox", "sh", "-c", SHOW_MAPS]);
    const [uidMap, gidMap, setgroups, ids] = sections(result.stdout);
    assertEquals(uidMap, ["0 0 65536"], "/proc/self/uid_map inside", describe(result));
    assertEquals(gidMap, ["0 0 65536"], "/proc/self/gid_map inside", describe(result));
    assertEquals(setgroups, ["allow"], "/proc/self/setgroups inside", describe(result));
    assertEquals(ids, ["0", "0"], "id -u and id -g inside", describe(result));
  },
);

Deno.test(
  named(
    "rootless exec: the child joins the PID namespace from the container's user namespace and forks into it",
    rootlessUnavailable(),
  ),
  async () => {
    await busyboxRootfs();
    const started = await gcrOk(["run", "-d", "-q", "busybox", "sleep", "30"], { user: RANGED_USER });
    const id = lines(started.stdout)[0]!;
    try {
      const inspect = await gcrOk(["inspect", id], { user: RANGED_USER });
      const initPid = JSON.parse(inspect.stdout)[0].initPid as number;
      const kinds = ["user", "mnt", "pid", "uts", "ipc", "net", "cgroup"];
      const script = `echo $$; ${kinds.map((k) => `readlink /proc/self/ns/${k}`).join("; ")}; ` +
        "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status";
      const exec = await gcrOk(["exec", id, "sh", "-c", script], { user: RANGED_USER });
      const [pid, ...rest] = lines(exec.stdout);
      assert(
        Number(pid) >= 2 && Number(pid) < 100,
        `a small pid in the container's PID namespace: ${pid}`,
        describe(exec),
      );
      assertEquals(
        rest.slice(0, kinds.length),
        kinds.map((k) => Deno.readLinkSync(`/proc/${initPid}/ns/${k}`)),
        "every namespace is the container's",
        describe(exec),
      );
      const init = Deno.readTextFileSync(`/proc/${initPid}/status`).match(/^(CapEff|NoNewPrivs|Seccomp):.*$/gm)!;
      assertEquals(rest.slice(kinds.length), init, "the container's hardening", describe(exec));
      const status = await gcr(["exec", id, "sh", "-c", "exit 7"], { user: RANGED_USER });
      assertEquals(status.code, 7, "the exit status passes through", describe(status));
    } finally {
      await gcr(["rm", "-f", id], { user: RANGED_USER });
    }
  },
);
