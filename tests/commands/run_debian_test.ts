/**
 * A real distribution's rootfs (Debian bookworm, minbase) behaves as under
 * any other runtime.
 */
import { debianRootfs, debianUnavailable, describe, gcr, gcrOk, named } from "../fixtures.ts";
import { assertEquals, assertMatch, lines } from "../helpers.ts";

Deno.test(
  named(
    "Debian: bash sees pid 1, the container id as hostname, and uid=0(root) gid=0(root) groups=0(root)",
    debianUnavailable(),
  ),
  async () => {
    await debianRootfs();
    const result = await gcrOk(["run", "-q", "debian", "bash", "-c", "echo $$; hostname; id"]);
    const [pid, hostname = "", id] = lines(result.stdout);
    assertEquals(pid, "1", "echo $$", describe(result));
    assertMatch(hostname, /^[0-9a-f]{12}$/, "hostname is the container id", describe(result));
    assertEquals(id, "uid=0(root) gid=0(root) groups=0(root)", "id", describe(result));
  },
);

Deno.test(named("Debian: apt-get --version works", debianUnavailable()), async () => {
  await debianRootfs();
  const result = await gcrOk(["run", "-q", "debian", "apt-get", "--version"]);
  assertMatch(result.stdout, /^apt \d+\.\d+/, "apt-get --version's first line", describe(result));
});

Deno.test(named("Debian: `yes | head -2` ends (SIGPIPE is back at its default)", debianUnavailable()), async () => {
  await debianRootfs();
  const result = await gcr(
    ["run", "-q", "debian", "bash", "-c", 'yes | head -2; echo "status ${PIPESTATUS[*]}"'],
    { timeoutMs: 15_000 },
  );
  assertEquals(result.code, 0, "exit status", describe(result));
  // yes dies of SIGPIPE (128+13) instead of looping or getting EPIPE.
  assertEquals(lines(result.stdout), ["y", "y", "status 141 0"], "output", describe(result));
  assertEquals(result.stderr, "", "yes prints no write error", describe(result));
});
