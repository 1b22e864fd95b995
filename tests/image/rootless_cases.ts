/**
 * The rootless subset of the layer applier tests. Not collected by `deno
 * test tests/image/` on purpose (no `_test` suffix): apply_layer_test.ts runs
 * this file as user gcrtest through `setpriv`, because these cases mean
 * something only without root.
 */
import { assembleRootfs } from "../../image/apply_layer.ts";
import { S_IFIFO, S_IFMT } from "../../ffi/constants.ts";
import { allPaths, applyFile, makeSentinel, pyTar, snapshot, stat, xattrHex } from "./layer_fixtures.ts";
import { exists } from "../../host/files.ts";
import { assert, assertEquals, assertRejects } from "../helpers.ts";

if (Deno.uid() === 0) throw new Error("rootless_cases.ts must run as a user other than root");

async function withDirs(body: (root: string, sentinel: string, tars: string) => Promise<void>): Promise<void> {
  const t = await Deno.makeTempDir({ prefix: "gcr-rootless-" });
  const root = `${t}/root`;
  const sentinel = `${t}/sentinel`;
  const tars = `${t}/tars`;
  for (const dir of [root, sentinel, tars]) await Deno.mkdir(dir);
  await makeSentinel(sentinel);
  const before = await snapshot(sentinel);
  try {
    await body(root, sentinel, tars);
    assertEquals(await snapshot(sentinel), before, "the sentinel beside the root changed");
    assertEquals([...Deno.readDirSync(t)].map((e) => e.name).sort(), ["root", "sentinel", "tars"]);
  } finally {
    await Deno.remove(t, { recursive: true }).catch(async () => {
      await new Deno.Command("chmod", { args: ["-R", "u+rwx", t] }).output();
      await Deno.remove(t, { recursive: true });
    });
  }
}

Deno.test("rootless: no chown, devices skipped with a notice, modes (setuid, 0555 dirs) and times kept", async () => {
  await withDirs(async (root, _sentinel, tars) => {
    const notices = await applyFile(
      root,
      await pyTar(`${tars}/types.tar`, [
        { name: "ro", type: "dir", mode: 0o555, mtime: 1500000000 },
        { name: "ro/file", data: "x", uid: 1234, gid: 1234, mode: 0o4755, mtime: 1600000000 },
        { name: "ro/link", type: "symlink", link: "file" },
        { name: "ro/hard", type: "hardlink", link: "ro/file" },
        { name: "fifo", type: "fifo", mode: 0o640 },
        { name: "null", type: "char", devmajor: 1, devminor: 3 },
        { name: "loop", type: "block", devmajor: 7, devminor: 0 },
      ]),
      "tar",
      true,
    );
    assertEquals(stat(`${root}/ro/file`).uid, Deno.uid(), "owned by the user, not the archive's uid");
    assertEquals(stat(`${root}/ro/file`).mode & 0o7777, 0o4755);
    assertEquals(stat(`${root}/ro/file`).mtime, 1600000000000);
    assertEquals(stat(`${root}/ro`).mode & 0o7777, 0o555, "a 0555 directory could still be filled, then closed");
    assertEquals(stat(`${root}/ro`).mtime, 1500000000000);
    assertEquals(stat(`${root}/ro/hard`).ino, stat(`${root}/ro/file`).ino);
    assertEquals(stat(`${root}/fifo`).mode & S_IFMT, S_IFIFO);
    assert(!exists(`${root}/null`) && !exists(`${root}/loop`), "device nodes are skipped");
    assertEquals(notices.filter((n) => n.includes("skipped device node")).length, 2, notices.join("\n"));
  });
});

Deno.test("rootless: user.* xattrs set; trusted.* and security.capability become notices", async () => {
  await withDirs(async (root, _sentinel, tars) => {
    const notices = await applyFile(
      root,
      await pyTar(`${tars}/x.tar`, [
        {
          name: "f",
          data: "f",
          xattrs: {
            "user.note": "6869",
            "trusted.t": "01",
            "security.capability": "0100000280000000000000000000000000000000",
          },
        },
      ]),
      "tar",
      true,
    );
    assertEquals(await xattrHex(`${root}/f`, "user.note"), "6869");
    assert(notices.some((n) => n.includes("trusted.t") && n.includes("needs root")), notices.join("\n"));
    assert(notices.some((n) => n.includes("security.capability")), notices.join("\n"));
  });
});

Deno.test("rootless: hostile members are refused or contained", async () => {
  await withDirs(async (root, sentinel, tars) => {
    await assertRejects(
      async () =>
        await applyFile(root, await pyTar(`${tars}/a.tar`, [{ name: "../sentinel/pwned", data: "x" }]), "tar", true),
      /path escapes the root/,
    );
    await applyFile(
      root,
      await pyTar(`${tars}/1.tar`, [
        { name: "evil", type: "symlink", link: sentinel },
        { name: "evil-file", type: "symlink", link: `${sentinel}/secret` },
      ]),
      "tar",
      true,
    );
    await assertRejects(
      async () => await applyFile(root, await pyTar(`${tars}/b.tar`, [{ name: "evil/pwned", data: "x" }]), "tar", true),
      /leads nowhere/,
    );
    await assertRejects(
      async () =>
        await applyFile(
          root,
          await pyTar(`${tars}/c.tar`, [{ name: "h", type: "hardlink", link: `${sentinel}/secret` }]),
          "tar",
          true,
        ),
      /does not exist/,
    );
    await applyFile(
      root,
      await pyTar(`${tars}/d.tar`, [
        { name: "evil/.wh.secret", data: "" },
        { name: "evil-file", data: "replaced", mode: 0o777 },
      ]),
      "tar",
      true,
    );
    assertEquals(await Deno.readTextFile(`${root}/evil-file`), "replaced");
  });
});

Deno.test("rootless: assembly removes read-only lower directories through whiteouts and replaces outputs", async () => {
  await withDirs(async (root, _sentinel, tars) => {
    const output = `${root}/out`;
    const layer = (path: string) => ({ mediaType: "tar", open: async () => (await Deno.open(path)).readable });
    const l1 = await pyTar(`${tars}/1.tar`, [
      { name: "ro", type: "dir", mode: 0o555 },
      { name: "ro/inner", type: "dir", mode: 0o500 },
      { name: "ro/inner/f", data: "f", mode: 0o400 },
      { name: "keep", data: "k" },
    ]);
    const l2 = await pyTar(`${tars}/2.tar`, [{ name: ".wh.ro", data: "" }]);
    await assembleRootfs(output, [layer(l1), layer(l2)], { rootless: true });
    assertEquals(allPaths(output), ["keep"]);
    // Replacing it removes the old tree, read-only directories included.
    await assembleRootfs(output, [layer(l1)], { rootless: true });
    assertEquals(allPaths(output).includes("ro/inner/f"), true);
    await assembleRootfs(output, [layer(l2)], { rootless: true });
    assertEquals([...Deno.readDirSync(root)].map((e) => e.name), ["out"]);
  });
});
