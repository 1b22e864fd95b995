/**
 * The copy-on-write root: the image folder is overlay's read-only lower
 * layer, the container's writes and deletions land in its own upper folder
 * under the state directory, which `--rm`, `gcr rm` and `gcr prune` remove.
 * As root and rootless (the test users, through setpriv).
 */
import { join } from "node:path";
import {
  BUSYBOX,
  busyboxRootfs,
  childrenOf,
  containerIds,
  DEBIAN,
  debianRootfs,
  debianUnavailable,
  describe,
  ensureFixtureDirs,
  ensureUser,
  gcr,
  gcrOk,
  listTree,
  missingRoot,
  named,
  parseMountinfo,
  RANGED_USER,
  rootlessUnavailable,
  SCRATCH,
  SOLO_USER,
  spawnGcr,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, lines } from "../helpers.ts";

/** A fresh state directory for one test, so it can see exactly which containers it made. */
function freshState(): { dir: string; env: Record<string, string>; ids: () => string[]; remove: () => void } {
  ensureFixtureDirs();
  const dir = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "state-" });
  const ids = () => containerIds(dir);
  return { dir, env: { GCR_STATE: dir }, ids, remove: () => Deno.removeSync(dir, { recursive: true }) };
}

function hostMounts(): string[] {
  return parseMountinfo(Deno.readTextFileSync("/proc/self/mountinfo")).map((m) => `${m.mountPoint} ${m.fsType}`);
}

Deno.test(
  named("--rm: touch /x and rm -rf /bin inside leave the image identical and no state folder", missingRoot()),
  async () => {
    await busyboxRootfs();
    const state = freshState();
    try {
      const before = listTree(BUSYBOX);
      const result = await gcrOk(
        ["run", "-q", "--rm", "busybox", "sh", "-c", "touch /x; rm -rf /bin; ls /bin 2>/dev/null || echo gone"],
        { env: state.env },
      );
      // busybox's own `ls` is gone with /bin: the shell (already running) still reports.
      assertEquals(lines(result.stdout), ["gone"], "/bin is gone inside the container", describe(result));
      assertEquals(listTree(BUSYBOX), before, "the image listing after the run", describe(result));
      assertEquals(state.ids(), [], "--rm leaves no container folder", describe(result));
    } finally {
      state.remove();
    }
  },
);

Deno.test(
  named("--rm on the Debian image: writes and deletions leave the image identical", debianUnavailable()),
  async () => {
    await debianRootfs();
    const state = freshState();
    try {
      const before = listTree(DEBIAN);
      const result = await gcrOk(
        ["run", "-q", "--rm", "debian", "sh", "-c", "touch /x && rm -rf /usr/share/doc /bin && echo hi > /etc/motd"],
        { env: state.env, timeoutMs: 60_000 },
      );
      assertEquals(listTree(DEBIAN), before, "the Debian image listing after the run", describe(result));
      assertEquals(state.ids(), [], "--rm leaves no container folder", describe(result));
    } finally {
      state.remove();
    }
  },
);

Deno.test(
  named("without --rm the writes stay in upper, the record says how it ended; gcr rm removes both", missingRoot()),
  async () => {
    await busyboxRootfs();
    const state = freshState();
    try {
      const result = await gcrOk(
        ["run", "-q", "busybox", "sh", "-c", "hostname; echo kept > /root/new; rm /linuxrc"],
        { env: state.env },
      );
      const id = lines(result.stdout)[0]!;
      assertEquals(state.ids(), [id], "one container folder, named by the id", describe(result));
      const dir = join(state.dir, "containers", id);
      assertEquals(Deno.readTextFileSync(join(dir, "upper/root/new")), "kept\n", "the write is in upper");
      const whiteout = Deno.lstatSync(join(dir, "upper/linuxrc"));
      assert(whiteout.isCharDevice && whiteout.rdev === 0, "the deletion is a whiteout (0/0 device) in upper");
      assert(Deno.lstatSync(join(BUSYBOX, "linuxrc")).isSymlink, "the image still has linuxrc");
      const record = JSON.parse(Deno.readTextFileSync(join(state.dir, "run", id, "container.json")));
      assertEquals(
        [record.id, record.image, record.rootfs, record.command[0], record.exitStatus],
        [id, "busybox", Deno.realPathSync(BUSYBOX), "sh", 0],
        "container.json",
      );
      assertMatch(record.created, /^\d{4}-\d\d-\d\dT/, "created is a date");

      const removed = await gcr(["rm", id], { env: state.env });
      assertEquals([removed.code, removed.stdout], [0, `${id}\n`], "gcr rm prints what it removed", describe(removed));
      assertEquals(state.ids(), [], "the folder is gone");
      const again = await gcr(["rm", id], { env: state.env });
      assertEquals(again.code, 1, "removing it again fails", describe(again));
      assertIncludes(again.stderr, "no such container", "the error", describe(again));
    } finally {
      state.remove();
    }
  },
);

Deno.test(
  named("gcr rm refuses a running container; gcr prune removes only the stopped ones", missingRoot()),
  async () => {
    await busyboxRootfs();
    const state = freshState();
    const running = await spawnGcr(["run", "-q", "busybox", "sh", "-c", "hostname; read line || :"], {
      env: state.env,
      stdinPipe: true,
    });
    try {
      const [, runningId] = await running.waitForStdout(/^([0-9a-f]{12})$/m);
      const stopped = [];
      for (let i = 0; i < 2; i++) {
        stopped.push(lines((await gcrOk(["run", "-q", "busybox", "hostname"], { env: state.env })).stdout)[0]!);
      }
      // The overlay is mounted only in the container's mount namespace.
      assert(
        !Deno.readTextFileSync("/proc/self/mountinfo").includes(state.dir),
        "no mount of the state folder on the host while a container runs",
      );
      const refused = await gcr(["rm", runningId!], { env: state.env });
      assertEquals(refused.code, 1, "gcr rm of a running container fails", describe(refused));
      assertMatch(refused.stderr, /container [0-9a-f]{12} is running/, "the refusal", describe(refused));

      const pruned = await gcrOk(["prune"], { env: state.env });
      assertEquals(
        lines(pruned.stdout).toSorted(),
        stopped.toSorted(),
        "prune prints the stopped ids",
        describe(pruned),
      );
      assertEquals(state.ids(), [runningId], "only the running container's folder is left");

      await running.closeStdin();
      const finished = await running.finish();
      assertEquals(finished.code, 0, "the running container exits", describe(finished));
      const last = await gcrOk(["prune"], { env: state.env });
      assertEquals(lines(last.stdout), [runningId], "prune removes it once stopped", describe(last));
      assertEquals(state.ids(), [], "no folder left");
    } finally {
      running.kill("SIGKILL");
      await running.finish().catch(() => undefined);
      state.remove();
    }
  },
);

Deno.test(
  named("--rm also removes the folder when the container is killed by a signal or a step fails", missingRoot()),
  async () => {
    await busyboxRootfs();
    const state = freshState();
    const mountsBefore = hostMounts();
    const running = await spawnGcr(["run", "-q", "--rm", "busybox", "sh", "-c", "echo up; sleep 30"], {
      env: state.env,
    });
    try {
      await running.waitForStdout(/up/);
      assertEquals(state.ids().length, 1, "the container has a folder while it runs");
      for (const child of childrenOf(running.pid)) Deno.kill(child, "SIGKILL");
      const killed = await running.finish();
      assertEquals(killed.code, 137, "the container was killed by SIGKILL", describe(killed));
      assertEquals(state.ids(), [], "no folder after the signal", describe(killed));

      const failed = await gcr(["run", "-q", "--rm", "-w", "/no/such/dir", "busybox", "true"], { env: state.env });
      assert(failed.code !== 0, "a run that fails at exec", describe(failed));
      assertEquals(state.ids(), [], "no folder after a failed step", describe(failed));
      assertEquals(hostMounts(), mountsBefore, "the host's mount table is as before");
    } finally {
      running.kill("SIGKILL");
      await running.finish().catch(() => undefined);
      state.remove();
    }
  },
);

for (const user of [RANGED_USER, SOLO_USER]) {
  Deno.test(
    named(
      `rootless overlay as ${user}: / is an overlay, writes land in ~/.local/share/gcr, gcr rm`,
      rootlessUnavailable(),
    ),
    async () => {
      await busyboxRootfs();
      const account = await ensureUser(user);
      const before = listTree(BUSYBOX);
      const result = await gcrOk(
        ["run", "-q", "busybox", "sh", "-c", "hostname; echo mine > /x; grep ' / / ' /proc/self/mountinfo"],
        { user },
      );
      const [id, mount = ""] = lines(result.stdout);
      assertMatch(mount, / - overlay overlay .*lowerdir=/, "/ is an overlay inside", describe(result));
      const dir = join(account.home, ".local/share/gcr/containers", id!);
      assertEquals(Deno.readTextFileSync(join(dir, "upper/x")), "mine\n", "the write is in the user's upper folder");
      assertEquals(Deno.statSync(join(dir, "upper")).uid, account.uid, "upper belongs to the user");
      assertEquals(listTree(BUSYBOX), before, "the image is unchanged", describe(result));

      const removed = await gcrOk(["rm", id!], { user });
      assertEquals(lines(removed.stdout), [id], "gcr rm as the user", describe(removed));
      assert(!Deno.readDirSync(join(account.home, ".local/share/gcr/containers")).some((e) => e.name === id), "gone");

      const rm = await gcrOk(["run", "-q", "--rm", "busybox", "hostname"], { user });
      const rmId = lines(rm.stdout)[0]!;
      assert(
        ![...Deno.readDirSync(join(account.home, ".local/share/gcr/containers"))].some((e) => e.name === rmId),
        "--rm leaves no folder rootless",
        describe(rm),
      );
    },
  );
}

Deno.test(
  named(
    "--rootfs-copy: the container runs on a copy of the image, which it may change; the image is not",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const state = freshState();
    try {
      const before = listTree(BUSYBOX);
      const result = await gcrOk(
        [
          "run",
          "-q",
          "--rm",
          "--rootfs-copy",
          "busybox",
          "sh",
          "-c",
          "touch /x; rm /linuxrc; cat /proc/self/mountinfo",
        ],
        { env: state.env },
      );
      const root = parseMountinfo(result.stdout).find((m) => m.mountPoint === "/");
      assert(root && root.fsType !== "overlay", "/ is the copy, bound (not an overlay)", describe(result));
      assertEquals(listTree(BUSYBOX), before, "the image listing after the run", describe(result));
      assertEquals(state.ids(), [], "--rm removes the copy", describe(result));
    } finally {
      state.remove();
    }
  },
);
