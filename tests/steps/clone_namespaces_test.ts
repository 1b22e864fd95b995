/**
 * The container's first process lives in its own namespaces, is pid 1 and
 * root there, and is named by its container id.
 */
import { busyboxRootfs, describe, gcrOk, hostNamespaces, missingRoot, named } from "../fixtures.ts";
import { assertEquals, assertMatch, assertNotEquals, lines } from "../helpers.ts";

const NAMESPACES = ["user", "pid", "mnt", "uts", "ipc", "cgroup", "net"];

Deno.test(
  named(
    "the command sees new user, pid, mnt, uts, ipc, cgroup and net namespaces, is pid 1, uid 0, gid 0",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const script = NAMESPACES.map((ns) => `echo ${ns}=$(readlink /proc/self/ns/${ns})`).join("; ") +
      "; echo self=$$; echo uid=$(id -u); echo gid=$(id -g)";
    const result = await gcrOk(["run", "-q", "busybox", "sh", "-c", script]);
    const seen = Object.fromEntries(lines(result.stdout).map((line) => line.split("=", 2) as [string, string]));
    const host = hostNamespaces();
    for (const ns of NAMESPACES) {
      assertMatch(
        seen[ns] ?? "",
        new RegExp(`^${ns}:\\[\\d+\\]$`),
        `readlink /proc/self/ns/${ns} inside`,
        describe(result),
      );
      assertNotEquals(seen[ns], host[ns], `the ${ns} namespace inside must not be the host's`, describe(result));
    }
    assertEquals(seen.self, "1", "echo $$ inside (the command is pid 1)", describe(result));
    assertEquals(seen.uid, "0", "id -u inside", describe(result));
    assertEquals(seen.gid, "0", "id -g inside", describe(result));
  },
);

Deno.test(
  named("the hostname is a new 12-hex-digit container id on every run, and --hostname overrides it", missingRoot()),
  async () => {
    await busyboxRootfs();
    const hostHostname = Deno.hostname();
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const result = await gcrOk(["run", "-q", "busybox", "sh", "-c", 'hostname; echo "$HOSTNAME"']);
      const [hostname = "", env = ""] = lines(result.stdout);
      assertMatch(hostname, /^[0-9a-f]{12}$/, "hostname inside is 12 hex digits", describe(result));
      assertEquals(env, hostname, "$HOSTNAME inside equals hostname", describe(result));
      assertNotEquals(hostname, hostHostname, "the container's hostname must not be the host's", describe(result));
      ids.push(hostname);
    }
    assertNotEquals(ids[0], ids[1], "two runs must get different container ids");

    const named = await gcrOk(["run", "-q", "--hostname", "foo", "busybox", "sh", "-c", 'hostname; echo "$HOSTNAME"']);
    assertEquals(lines(named.stdout), ["foo", "foo"], "hostname and $HOSTNAME with --hostname foo", describe(named));
    assertEquals(Deno.hostname(), hostHostname, "the host's hostname is unchanged");
  },
);
