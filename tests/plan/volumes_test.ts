/**
 * `-v host:container[:ro]`: bind mounts made before the pivot, read-only when
 * asked; container paths resolved inside the image (a symlink cannot lead a
 * mount out of it); missing mount points made in the container's upper
 * folder, never in the image.
 */
import { join } from "node:path";
import {
  BUSYBOX,
  busyboxRootfs,
  copyRootfs,
  describe,
  ensureFixtureDirs,
  ensureUser,
  gcr,
  gcrOk,
  listTree,
  missingRoot,
  named,
  RANGED_USER,
  rootlessUnavailable,
  SCRATCH,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, lines } from "../helpers.ts";

/** A scratch folder with one file, readable by everyone. */
function hostFolder(): { dir: string; remove: () => void } {
  ensureFixtureDirs();
  const dir = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "volume-" });
  Deno.chmodSync(dir, 0o755);
  Deno.writeTextFileSync(join(dir, "from-host"), "hello\n");
  return { dir, remove: () => Deno.removeSync(dir, { recursive: true }) };
}

Deno.test(
  named("-v rw: the container reads and writes the host folder; a relative host path is from the cwd", missingRoot()),
  async () => {
    await busyboxRootfs();
    const host = hostFolder();
    try {
      const script = "cat /data/from-host; echo back > /data/from-container; grep ' /data ' /proc/self/mountinfo";
      Deno.mkdirSync(join(host.dir, "data-dir"));
      Deno.writeTextFileSync(join(host.dir, "data-dir/from-host"), "hello\n");
      const result = await gcrOk(["run", "-q", "--rm", "-v", "./data-dir:/data", "busybox", "sh", "-c", script], {
        cwd: host.dir,
      });
      const [read, mount = ""] = lines(result.stdout);
      assertEquals(read, "hello", "the host's file inside", describe(result));
      assertMatch(mount, / \/data rw,/, "/data is a read-write mount", describe(result));
      assertEquals(
        Deno.readTextFileSync(join(host.dir, "data-dir/from-container")),
        "back\n",
        "the container's write on the host",
      );
    } finally {
      host.remove();
    }
  },
);

Deno.test(
  named("-v :ro: reads work, writes fail with EROFS; a file volume too", missingRoot()),
  async () => {
    await busyboxRootfs();
    const host = hostFolder();
    try {
      const script = "cat /data/from-host; echo x > /data/new; echo x > /etc/hostfile; cat /etc/hostfile";
      const result = await gcr(
        ["run", "-q", "--rm", "-v", `${host.dir}:/data:ro`, "-v", `${host.dir}/from-host:/etc/hostfile:ro`, "busybox"]
          .concat(["sh", "-c", script]),
      );
      assertEquals(result.stdout.split("\n")[0], "hello", "reading a read-only volume", describe(result));
      assertIncludes(result.stderr, "can't create /data/new: Read-only file system", "EROFS", describe(result));
      assertIncludes(result.stderr, "can't create /etc/hostfile: Read-only file system", "EROFS", describe(result));
      assertEquals([...Deno.readDirSync(host.dir)].map((e) => e.name), ["from-host"], "nothing written on the host");
    } finally {
      host.remove();
    }
  },
);

Deno.test(
  named("-v: a missing container path is made in upper (as a folder or a file), never in the image", missingRoot()),
  async () => {
    await busyboxRootfs();
    const host = hostFolder();
    ensureFixtureDirs();
    const state = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "state-" });
    try {
      const before = listTree(BUSYBOX);
      const result = await gcrOk([
        "run",
        "-q",
        "-v",
        `${host.dir}:/new/deep`,
        "-v",
        `${host.dir}/from-host:/etc/added.conf`,
        "busybox",
        "sh",
        "-c",
        "hostname; cat /new/deep/from-host /etc/added.conf",
      ], { env: { GCR_STATE: state } });
      const [id, ...read] = lines(result.stdout);
      assertEquals(read, ["hello", "hello"], "both volumes inside", describe(result));
      assertEquals(listTree(BUSYBOX), before, "the image is unchanged", describe(result));
      const upper = join(state, "containers", id!, "upper");
      assert(Deno.statSync(join(upper, "new/deep")).isDirectory, "upper/new/deep is a folder");
      assert(Deno.statSync(join(upper, "etc/added.conf")).isFile, "upper/etc/added.conf is a file");
      assertEquals(
        Deno.statSync(join(upper, "etc")).mode! & 0o7777,
        Deno.statSync(join(BUSYBOX, "etc")).mode! & 0o7777,
      );
    } finally {
      host.remove();
      Deno.removeSync(state, { recursive: true });
    }
  },
);

Deno.test(
  named(
    "-v: a container path that escapes through a symlink is refused; one inside the image is followed",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const host = hostFolder();
    const copy = await copyRootfs(BUSYBOX);
    try {
      Deno.symlinkSync("../../../../../../../../tmp", join(copy.path, "escape"));
      Deno.symlinkSync("../../../..", join(copy.path, "etc/up"));
      Deno.symlinkSync("/root", join(copy.path, "inside"));
      // The third climbs back from a missing folder: what follows is checked again.
      for (const target of ["/escape", "/escape/sub", "/nowhere/../escape/sub", "/etc/up/etc", "/root/../../etc"]) {
        const result = await gcr(["run", "-q", "--rm", "-v", `${host.dir}:${target}`, copy.path, "true"], {
          rootfsDir: false,
        });
        assertEquals(result.code, 125, `-v …:${target} is refused`, describe(result));
        assertEquals(lines(result.stderr).length, 1, "one line", describe(result));
        assertMatch(result.stderr, /leads out of the rootfs|leaves the rootfs/, "why", describe(result));
      }
      const inside = await gcrOk(
        ["run", "-q", "--rm", "-v", `${host.dir}:/inside`, copy.path, "cat", "/root/from-host"],
        { rootfsDir: false },
      );
      assertEquals(inside.stdout, "hello\n", "an absolute symlink resolves inside the image", describe(inside));
    } finally {
      copy.remove();
      host.remove();
    }
  },
);

Deno.test(named("-v: a missing host path is refused with one line", missingRoot()), async () => {
  await busyboxRootfs();
  const result = await gcr(["run", "-q", "--rm", "-v", "/no/such/gcr/path:/data", "busybox", "true"]);
  assertEquals(result.code, 125, "exit status", describe(result));
  assertEquals(
    result.stderr.trim(),
    `gcr: volume "/no/such/gcr/path:/data": host path /no/such/gcr/path does not exist`,
    "the error",
  );
});

Deno.test(named(`-v rootless as ${RANGED_USER}: rw and ro`, rootlessUnavailable()), async () => {
  await busyboxRootfs();
  const account = await ensureUser(RANGED_USER);
  const host = hostFolder();
  try {
    Deno.chownSync(host.dir, account.uid, account.gid);
    const result = await gcr([
      "run",
      "-q",
      "--rm",
      "-v",
      `${host.dir}:/data`,
      "-v",
      `${host.dir}:/ro:ro`,
      "busybox",
      "sh",
      "-c",
      "cat /data/from-host; echo w > /data/w && echo wrote; echo x > /ro/x",
    ], { user: RANGED_USER });
    assertEquals(lines(result.stdout), ["hello", "wrote"], "rw volume rootless", describe(result));
    assertIncludes(result.stderr, "Read-only file system", "ro volume rootless", describe(result));
    assertEquals(Deno.readTextFileSync(join(host.dir, "w")), "w\n", "the write on the host");
  } finally {
    host.remove();
  }
});
