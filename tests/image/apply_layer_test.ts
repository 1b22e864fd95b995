/**
 * The layer applier against real archives: GNU tar builds them from real
 * trees (and extracts them again as an oracle), python's tarfile writes the
 * exotic and hostile ones. Every hostile case runs beside a sentinel folder
 * whose snapshot (types, modes, owners, link counts, times, content) must
 * not change. Run as root: `deno test -A tests/image/`; the rootless subset
 * runs as user gcrtest through setpriv (tests/image/rootless_cases.ts).
 */
import { applyLayer, assembleRootfs, type LayerSource } from "../../image/apply_layer.ts";
import { FS_LAYOUT, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from "../../ffi/constants.ts";
import {
  allPaths,
  applyFile,
  compress,
  gnuTar,
  makeSentinel,
  pyTar,
  PYTHON,
  sh,
  snapshot,
  stat,
  xattrHex,
} from "./layer_fixtures.ts";
import { exists } from "../../host/files.ts";
import { asUser, ensureUser, missingPrograms, missingRoot, named, needs, RANGED_USER } from "../fixtures.ts";
import { assert, assertEquals, assertRejects } from "../helpers.ts";

const isRoot = Deno.uid() === 0;
const unsanitized = { sanitizeResources: false, sanitizeOps: false };

/** A temp world: `root` (the rootfs), `sentinel` (must never change), `tars` (fixtures), `src` (trees). */
interface World {
  t: string;
  root: string;
  sentinel: string;
  tars: string;
  src: string;
}

async function inWorld(body: (w: World) => Promise<void>): Promise<void> {
  const t = await Deno.makeTempDir({ prefix: "gcr-layer-" });
  const w = { t, root: `${t}/root`, sentinel: `${t}/sentinel`, tars: `${t}/tars`, src: `${t}/src` };
  for (const dir of [w.root, w.sentinel, w.tars, w.src]) await Deno.mkdir(dir);
  await makeSentinel(w.sentinel);
  const before = await snapshot(w.sentinel);
  const probe = "/etc/gcr-escape-probe";
  let failure: unknown;
  try {
    await body(w);
  } catch (error) {
    failure = error;
  }
  try {
    // Containment is checked even when the body failed, and reported first.
    const also = failure ? ` (the test also failed: ${(failure as Error).message})` : "";
    assertEquals(await snapshot(w.sentinel), before, `the sentinel beside the root changed${also}`);
    assertEquals(
      [...Deno.readDirSync(t)].map((e) => e.name).sort(),
      ["root", "sentinel", "src", "tars"],
      `something was created beside the root${also}`,
    );
    assert(!exists(probe), `${probe} was created outside the root${also}`);
    if (failure) throw failure;
  } finally {
    await Deno.remove(t, { recursive: true });
  }
}

const kind = (path: string) => stat(path).mode & S_IFMT;
const perm = (path: string) => stat(path).mode & 0o7777;

Deno.test({
  ...named("entry types, ownership, modes and mtimes match GNU tar's own extraction", missingRoot()),
  ...unsanitized,
}, async () => {
  await inWorld(async ({ t, root, src, tars }) => {
    await sh("sh", [
      "-c",
      `set -e; cd ${src}
      printf hello > file; chown 1234:2345 file; chmod 0640 file; touch -d @1600000000 file
      cp /bin/true suid; chown 1234:2345 suid; chmod 4755 suid
      mkdir sgid-dir; printf x > sgid-dir/inner; chown 0:2345 sgid-dir; chmod 2775 sgid-dir
      touch -d @1500000000 sgid-dir
      ln -s file link-rel; chown -h 1234:2345 link-rel; touch -h -d @1400000000 link-rel
      ln -s /etc/passwd link-abs
      ln file hard
      mkfifo -m 0620 fifo
      mknod -m 0666 null c 1 3; mknod -m 0660 loop b 7 0
      mkdir -m 0700 empty-dir; touch -d @1300000000 empty-dir
      touch -d @1200000000 .`,
    ]);
    const tar = await gnuTar(src, `${tars}/types.tar`);
    await applyFile(root, tar);

    assertEquals(await Deno.readTextFile(`${root}/file`), "hello");
    assertEquals([kind(`${root}/file`), perm(`${root}/file`)], [S_IFREG, 0o640]);
    assertEquals([stat(`${root}/file`).uid, stat(`${root}/file`).gid], [1234, 2345], "numeric ownership");
    assertEquals(stat(`${root}/file`).mtime, 1600000000000);
    assertEquals(perm(`${root}/suid`), 0o4755, "setuid must survive the chown");
    assertEquals(stat(`${root}/suid`).uid, 1234);
    assertEquals(perm(`${root}/sgid-dir`), 0o2775);
    assertEquals(stat(`${root}/sgid-dir`).mtime, 1500000000000, "directory mtime is set after its children");
    assertEquals(stat(`${root}/empty-dir`).mtime, 1300000000000);
    assertEquals(stat(root).mtime, 1200000000000, "the ./ member applies to the root");
    assertEquals(Deno.readLinkSync(`${root}/link-rel`), "file");
    assertEquals(Deno.readLinkSync(`${root}/link-abs`), "/etc/passwd");
    assertEquals([kind(`${root}/link-rel`), stat(`${root}/link-rel`).uid], [S_IFLNK, 1234], "lchown");
    assertEquals(stat(`${root}/link-rel`).mtime, 1400000000000, "a symlink's own mtime");
    assertEquals(stat(`${root}/hard`).ino, stat(`${root}/file`).ino, "hard link shares the inode");
    assertEquals([kind(`${root}/fifo`), perm(`${root}/fifo`)], [S_IFIFO, 0o620]);
    assertEquals([kind(`${root}/null`), Deno.lstatSync(`${root}/null`).rdev], [S_IFCHR, 0x103]);
    assertEquals([kind(`${root}/loop`), Deno.lstatSync(`${root}/loop`).rdev, perm(`${root}/loop`)], [
      S_IFBLK,
      0x700,
      0o660,
    ]);

    // Oracle: GNU tar extracting the same archive gives the same tree.
    const oracle = `${t}/src/oracle`;
    await Deno.mkdir(oracle);
    await sh("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", tar, "-C", oracle]);
    const listing = (dir: string) =>
      sh("sh", ["-c", `cd ${dir} && find . -path ./oracle -prune -o -printf '%p %y %m %U %G %s %T@ %l %n\\n' | sort`]);
    assertEquals(await listing(root), await listing(oracle), "differs from GNU tar's extraction");
  });
});

Deno.test(
  {
    ...named(
      "xattrs: user.*, trusted.*, binary security.capability (kept through chown), on files, dirs, symlinks",
      missingRoot() ?? missingPrograms("setcap", "getcap", "getfattr", "setfattr"),
    ),
    ...unsanitized,
  },
  async () => {
    await inWorld(async ({ root, src, tars }) => {
      await sh("sh", [
        "-c",
        `set -e; cd ${src}
      cp /bin/true cap-bin; chown 1234:1234 cap-bin; chmod 0750 cap-bin
      setcap cap_setuid,cap_net_raw+ep cap-bin
      printf data > noted; setfattr -n user.note -v "hello" noted; setfattr -n trusted.t -v 0xff00fe noted
      mkdir dir; setfattr -n user.dir -v 0x80 dir`,
      ]);
      await applyFile(root, await gnuTar(src, `${tars}/x.tar`));
      const dump = (path: string) => sh("getfattr", ["-d", "-m", "-", "-e", "hex", "--absolute-names", path]);
      for (const name of ["cap-bin", "noted", "dir"]) {
        assertEquals(
          (await dump(`${root}/${name}`)).replace(root, ""),
          (await dump(`${src}/${name}`)).replace(src, ""),
          `xattrs of ${name}`,
        );
      }
      const capability = await xattrHex(`${root}/cap-bin`, "security.capability");
      assert(capability.includes("80"), `capability value has its 0x80 byte: ${capability}`);
      assertEquals(
        (await sh("getcap", [`${root}/cap-bin`])).replace(root, ""),
        (await sh("getcap", [`${src}/cap-bin`])).replace(src, ""),
      );
      assertEquals(stat(`${root}/cap-bin`).uid, 1234, "owner set, and the capability survived it");

      // python: binary user value, trusted.* on a symlink (lsetxattr, not followed) and on a FIFO.
      const tar = await pyTar(`${tars}/py.tar`, [
        { name: "bin", data: "b", xattrs: { "user.bin": "ff00fe80" } },
        { name: "sym", type: "symlink", link: "bin", xattrs: { "trusted.sym": "0102" } },
        { name: "pipe", type: "fifo", xattrs: { "trusted.pipe": "03" } },
      ]);
      await applyFile(root, tar);
      assertEquals(await xattrHex(`${root}/bin`, "user.bin"), "ff00fe80");
      assertEquals(await xattrHex(`${root}/sym`, "trusted.sym"), "0102");
      assertEquals(await xattrHex(`${root}/bin`, "trusted.sym"), "", "the symlink's target got nothing");
      assertEquals(await xattrHex(`${root}/pipe`, "trusted.pipe"), "03");
    });
  },
);

Deno.test("long names: GNU L/K, PAX path/linkpath, ustar prefix, non-UTF-8 bytes, big ids, PAX fractional mtime", async () => {
  await inWorld(async ({ root, tars }) => {
    const longDir = `long/${"d".repeat(120)}`;
    const longName = `${longDir}/${"f".repeat(150)}`;
    const longTarget = `${"../".repeat(3)}${"t".repeat(200)}`;
    for (const format of ["gnu", "pax"] as const) {
      await applyFile(
        root,
        await pyTar(`${tars}/${format}.tar`, [
          { name: `${format}/${longName}`, data: format },
          { name: `${format}/link`, type: "symlink", link: longTarget },
          { name: `${format}/hard-${"h".repeat(120)}`, type: "hardlink", link: `${format}/${longName}` },
        ], format),
      );
      assertEquals(await Deno.readTextFile(`${root}/${format}/${longName}`), format);
      assertEquals(Deno.readLinkSync(`${root}/${format}/link`), longTarget);
      assertEquals(stat(`${root}/${format}/hard-${"h".repeat(120)}`).ino, stat(`${root}/${format}/${longName}`).ino);
    }
    const prefixed = `${"p".repeat(90)}/${"n".repeat(90)}`;
    await applyFile(root, await pyTar(`${tars}/ustar.tar`, [{ name: prefixed, data: "ustar" }], "ustar"));
    assertEquals(await Deno.readTextFile(`${root}/${prefixed}`), "ustar");

    if (isRoot) {
      await applyFile(
        root,
        await pyTar(`${tars}/ids.tar`, [
          { name: "big-gnu", uid: 16777216, gid: 3000000, data: "x" }, // base-256 in GNU format
        ], "gnu"),
      );
      await applyFile(root, await pyTar(`${tars}/ids-pax.tar`, [{ name: "big-pax", uid: 3000000, data: "x" }]));
      assertEquals([stat(`${root}/big-gnu`).uid, stat(`${root}/big-gnu`).gid], [16777216, 3000000]);
      assertEquals(stat(`${root}/big-pax`).uid, 3000000);
    }
    await applyFile(
      root,
      await pyTar(`${tars}/bytes.tar`, [
        { name: "", nameHex: "6361 66e9".replace(" ", ""), data: "latin1" }, // "caf\xe9": not UTF-8
        { name: "frac", data: "", pax: { mtime: "1700000000.25" } },
      ]),
    );
    assertEquals(
      (await sh(PYTHON, ["-c", "import os,sys; print(os.path.exists(sys.argv[1].encode() + b'/caf\\xe9'))", root]))
        .trim(),
      "True",
      "a non-UTF-8 name keeps its exact bytes",
    );
    assertEquals(stat(`${root}/frac`).mtime, 1700000000250);
  });
});

const zstdTool = missingPrograms("zstd") === undefined;

Deno.test(
  `gzip, zstd, plain and Docker media types give the same tree; bad input fails clearly${
    zstdTool ? "" : " (zstd case skipped: no zstd program)"
  }`,
  async () => {
    await inWorld(async ({ t, src, tars }) => {
      await sh("sh", [
        "-c",
        `cd ${src} && mkdir -p a/b && printf one > a/one && printf two > a/b/two && ln -s one a/l`,
      ]);
      const tar = await gnuTar(src, `${tars}/layer.tar`);
      const gz = await compress(tar, "gzip");
      const cases: [string, string][] = [
        [tar, "application/vnd.oci.image.layer.v1.tar"],
        [gz, "application/vnd.oci.image.layer.v1.tar+gzip"],
        [gz, "application/vnd.docker.image.rootfs.diff.tar.gzip"],
        [tar, "tar"],
      ];
      if (zstdTool) cases.push([await compress(tar, "zstd"), "application/vnd.oci.image.layer.v1.tar+zstd"]);
      const listings: string[] = [];
      for (const [i, [file, mediaType]] of cases.entries()) {
        const root = `${t}/src/out${i}`;
        await Deno.mkdir(root);
        // Every other one inflates on a worker thread (the opt-in path).
        await applyFile(root, file, mediaType, !isRoot, i % 2 === 1);
        listings.push(await sh("sh", ["-c", `cd ${root} && find . -printf '%p %y %m %s %T@ %l\\n' | sort`]));
        assertEquals(await Deno.readTextFile(`${root}/a/b/two`), "two", mediaType);
      }
      for (const listing of listings) assertEquals(listing, listings[0]);

      const root = `${t}/src/bad`;
      await Deno.mkdir(root);
      await assertRejects(
        () => applyFile(root, tar, "application/vnd.oci.image.config.v1+json"),
        /unsupported layer media type/,
      );
      await assertRejects(() => applyFile(root, gz, "tar"), /bad checksum|not a tar archive/);
      const bytes = await Deno.readFile(tar);
      await Deno.writeFile(`${tars}/cut.tar`, bytes.slice(0, 512 * 3 + 100));
      await assertRejects(() => applyFile(root, `${tars}/cut.tar`), /truncated/);
      const gzBytes = await Deno.readFile(gz);
      await Deno.writeFile(`${tars}/cut.tar.gz`, gzBytes.slice(0, gzBytes.length - 20));
      await assertRejects(() => applyFile(root, `${tars}/cut.tar.gz`, "tar+gzip"), /./);
      await assertRejects(() => applyFile(root, `${tars}/cut.tar.gz`, "tar+gzip", !isRoot, true), /./);
      const flipped = bytes.slice();
      flipped[0] = flipped[0]! ^ 0x01;
      await Deno.writeFile(`${tars}/flipped.tar`, flipped);
      await assertRejects(() => applyFile(root, `${tars}/flipped.tar`), /bad checksum/);
      await Deno.writeFile(`${tars}/empty.tar`, new Uint8Array(1024));
      await applyFile(root, `${tars}/empty.tar`);
    });
  },
);

Deno.test("whiteouts remove lower entries only; whiteout files are never written", async () => {
  await inWorld(async ({ root, tars }) => {
    await applyFile(
      root,
      await pyTar(`${tars}/1.tar`, [
        { name: "a", type: "dir" },
        { name: "a/b", data: "b" },
        { name: "a/c", data: "c" },
        { name: "d", data: "d" },
        { name: "tree", type: "dir" },
        { name: "tree/x", type: "dir", mode: 0o555 },
        { name: "tree/x/y", data: "y" },
        { name: "keep", data: "lower" },
      ]),
    );
    await applyFile(
      root,
      await pyTar(`${tars}/2.tar`, [
        { name: ".wh.d", data: "" },
        { name: "a/.wh.b", data: "" },
        { name: ".wh.tree", data: "" },
        { name: ".wh.never-existed", data: "" },
        { name: "keep", data: "upper" },
        { name: ".wh.keep", data: "" }, // same layer: a whiteout hides lower layers only
        { name: "gone/.wh.x", data: "" }, // parent does not exist: nothing to do, nothing made
      ]),
    );
    assertEquals(allPaths(root), ["a", "a/c", "keep"]);
    assertEquals(await Deno.readTextFile(`${root}/keep`), "upper");
  });
});

Deno.test("opaque directories hide lower content wherever the marker sits; this layer's entries stay", async () => {
  await inWorld(async ({ root, tars }) => {
    const lower = (dir: string) => [
      { name: dir, type: "dir" as const },
      { name: `${dir}/old`, data: "old" },
      { name: `${dir}/sub`, type: "dir" as const },
      { name: `${dir}/sub/old2`, data: "old2" },
      { name: `${dir}/lower-dir`, type: "dir" as const },
      { name: `${dir}/lower-dir/z`, data: "z" },
    ];
    await applyFile(
      root,
      await pyTar(`${tars}/1.tar`, [...lower("before"), ...lower("after"), { name: "other/untouched", data: "u" }]),
    );
    await applyFile(
      root,
      await pyTar(`${tars}/2.tar`, [
        { name: "before", type: "dir", mode: 0o750, mtime: 1111111111 },
        { name: "before/.wh..wh..opq", data: "" },
        { name: "before/new", data: "new" },
        { name: "before/sub", type: "dir" },
        { name: "before/sub/new2", data: "new2" },
        { name: "after", type: "dir", mode: 0o750, mtime: 1111111111 },
        { name: "after/new", data: "new" },
        { name: "after/sub/new2", data: "new2" }, // sub only implied by its child
        { name: "after/.wh..wh..opq", data: "" },
      ]),
    );
    for (const dir of ["before", "after"]) {
      assertEquals(allPaths(`${root}/${dir}`), ["new", "sub", "sub/new2"], `${dir}: lower content removed`);
      assertEquals(perm(`${root}/${dir}`), 0o750);
      assertEquals(stat(`${root}/${dir}`).mtime, 1111111111000, "mtime set after the opaque removal");
    }
    assertEquals(await Deno.readTextFile(`${root}/other/untouched`), "u");
    assert(!allPaths(root).some((p) => p.includes(".wh.")), "a whiteout file was written");
  });
});

Deno.test("hard links across layers, with relative, absolute and ./ link names", async () => {
  await inWorld(async ({ root, tars }) => {
    await applyFile(root, await pyTar(`${tars}/1.tar`, [{ name: "usr/bin/tool", data: "v1", mode: 0o755 }]));
    await applyFile(
      root,
      await pyTar(`${tars}/2.tar`, [
        { name: "usr/bin/rel", type: "hardlink", link: "usr/bin/tool" },
        { name: "abs", type: "hardlink", link: "/usr/bin/tool" },
        { name: "./dot", type: "hardlink", link: "./usr/bin/tool" },
        { name: "usr/bin/tool", type: "hardlink", link: "usr/bin/tool" }, // to itself: a no-op
      ]),
    );
    const ino = stat(`${root}/usr/bin/tool`).ino;
    for (const p of ["usr/bin/rel", "abs", "dot"]) assertEquals(stat(`${root}/${p}`).ino, ino, p);
    assertEquals(stat(`${root}/abs`).nlink, 4);
    // A later layer rewriting one name must not change the other links' data.
    await applyFile(root, await pyTar(`${tars}/3.tar`, [{ name: "usr/bin/tool", data: "v2" }]));
    assertEquals(await Deno.readTextFile(`${root}/usr/bin/tool`), "v2");
    assertEquals(await Deno.readTextFile(`${root}/abs`), "v1");
  });
});

// ---------------------------------------------------------------------------
// Hostile archives. Each runs in inWorld: the sentinel must not change.

Deno.test("hostile: .. names are refused with a clear error", async () => {
  await inWorld(async ({ root, tars }) => {
    for (const [i, name] of ["../sentinel/pwned", "a/../../sentinel/pwned", "../sentinel/"].entries()) {
      const tar = await pyTar(`${tars}/${i}.tar`, [{ name, data: "pwned", type: name.endsWith("/") ? "dir" : "file" }]);
      await assertRejects(
        () => applyFile(root, tar),
        new RegExp(`^${JSON.stringify(name).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: path escapes the root$`),
      );
    }
  });
});

Deno.test("hostile: absolute names land inside the root", async () => {
  await inWorld(async ({ root, sentinel, tars }) => {
    await applyFile(
      root,
      await pyTar(`${tars}/abs.tar`, [
        { name: `${sentinel}/pwned`, data: "inside" },
        { name: "/etc/gcr-escape-probe", data: "inside" },
        { name: `${sentinel}/secret`, data: "inside", mode: 0o777 },
      ]),
    );
    assertEquals(await Deno.readTextFile(`${root}${sentinel}/pwned`), "inside");
    assertEquals(await Deno.readTextFile(`${root}/etc/gcr-escape-probe`), "inside");
  });
});

Deno.test("hostile: members through a symlink pointing out resolve inside the root", async () => {
  await inWorld(async ({ root, sentinel, tars }) => {
    // evil -> the sentinel (absolute): the sentinel's path does not exist inside the root.
    await assertRejects(
      async () =>
        await applyFile(
          root,
          await pyTar(`${tars}/1.tar`, [
            { name: "evil", type: "symlink", link: sentinel },
            { name: "evil/pwned", data: "pwned" },
          ]),
        ),
      /^"evil\/pwned": .*leads nowhere/,
    );
    // to-root -> / and up -> ../../..: both are the root itself.
    await applyFile(
      root,
      await pyTar(`${tars}/2.tar`, [
        { name: "to-root", type: "symlink", link: "/" },
        { name: "to-root/via-root", data: "r" },
        { name: "up", type: "symlink", link: "../../../../../../.." },
        { name: "up/via-up", data: "u" },
        { name: "up/sentinel/", type: "dir" },
        { name: "up/sentinel/secret", data: "inside", mode: 0o666 },
      ]),
    );
    assertEquals(await Deno.readTextFile(`${root}/via-root`), "r");
    assertEquals(await Deno.readTextFile(`${root}/via-up`), "u");
    assertEquals(await Deno.readTextFile(`${root}/sentinel/secret`), "inside");
    // A member with the symlink's own name replaces the symlink, whatever its type;
    // nothing is chmodded, chowned or written through it.
    await applyFile(
      root,
      await pyTar(`${tars}/3.tar`, [
        { name: "f", type: "symlink", link: `${sentinel}/secret` },
        { name: "f", data: "replaced", mode: 0o777 },
        { name: "d", type: "symlink", link: sentinel },
        { name: "d", type: "dir", mode: 0o777, uid: 4321 },
        { name: "p", type: "symlink", link: `${sentinel}/secret` },
        { name: "p", type: "fifo", mode: 0o777 },
        { name: "s", type: "symlink", link: `${sentinel}/secret` },
        { name: "s", type: "symlink", link: `${sentinel}/sub`, mtime: 1 },
      ]),
    );
    assertEquals([kind(`${root}/f`), await Deno.readTextFile(`${root}/f`)], [S_IFREG, "replaced"]);
    assertEquals(kind(`${root}/d`), S_IFDIR);
    assertEquals(kind(`${root}/p`), S_IFIFO);
    assertEquals(Deno.readLinkSync(`${root}/s`), `${sentinel}/sub`);
  });
});

Deno.test("hostile: chains of symlinks resolve inside the root", async () => {
  await inWorld(async ({ root, sentinel, tars }) => {
    const inner = sentinel.slice(1); // the sentinel's path, made inside the root
    await applyFile(
      root,
      await pyTar(`${tars}/chain.tar`, [
        { name: `${inner}/`, type: "dir" },
        { name: "c", type: "dir" },
        { name: "b", type: "symlink", link: `c/../../../../../..${sentinel.slice(0, sentinel.lastIndexOf("/"))}` },
        { name: "a", type: "symlink", link: "b/sentinel" },
        { name: "a/pwned", data: "chain" },
        { name: "a/secret", data: "chain", mode: 0o777 },
      ]),
    );
    assertEquals(await Deno.readTextFile(`${root}/${inner}/pwned`), "chain");
    assertEquals(await Deno.readTextFile(`${root}/${inner}/secret`), "chain");
    await assertRejects(
      async () =>
        await applyFile(
          root,
          await pyTar(`${tars}/loop.tar`, [
            { name: "loop1", type: "symlink", link: "loop2" },
            { name: "loop2", type: "symlink", link: "loop1" },
            { name: "loop1/x", data: "x" },
          ]),
        ),
      /ELOOP/,
    );
  });
});

Deno.test("hostile: a symlink from an earlier layer cannot be used to reach out", async () => {
  await inWorld(async ({ root, sentinel, tars }) => {
    await applyFile(
      root,
      await pyTar(`${tars}/1.tar`, [
        { name: "evil", type: "symlink", link: sentinel },
        { name: "evil-rel", type: "symlink", link: "../sentinel" },
        { name: "evil-file", type: "symlink", link: `${sentinel}/secret` },
      ]),
    );
    const hostile: [string, import("./layer_fixtures.ts").PyEntry, RegExp | null][] = [
      ["write", { name: "evil/pwned", data: "x" }, /leads nowhere/],
      ["write-rel", { name: "evil-rel/pwned", data: "x" }, /leads nowhere/],
      ["dir", { name: "evil/sub/", type: "dir", mode: 0o777 }, /leads nowhere/],
      ["hardlink", { name: "stolen", type: "hardlink", link: "evil/secret" }, /does not exist/],
      ["hardlink-rel", { name: "stolen", type: "hardlink", link: "evil-rel/secret" }, /does not exist/],
      ["hardlink-to-symlink", { name: "linked", type: "hardlink", link: "evil-file" }, null],
      ["whiteout", { name: "evil/.wh.secret", data: "" }, null],
      ["whiteout-rel", { name: "evil-rel/.wh.secret", data: "" }, null],
      ["opaque", { name: "evil/.wh..wh..opq", data: "" }, /leads nowhere/],
      ["replace", { name: "evil-file", data: "replaced", mode: 0o777 }, null],
    ];
    for (const [label, entry, error] of hostile) {
      const tar = await pyTar(`${tars}/2-${label}.tar`, [entry]);
      if (error) await assertRejects(() => applyFile(root, tar), error);
      else await applyFile(root, tar);
    }
    // linkat(…, 0) linked the symlink itself, not the file it names.
    assertEquals(kind(`${root}/linked`), S_IFLNK);
    assertEquals(await Deno.readTextFile(`${root}/evil-file`), "replaced");
  });
});

Deno.test("hostile: hard links to files outside the root are refused", async () => {
  await inWorld(async ({ root, sentinel, tars }) => {
    const cases: [string, string, RegExp][] = [
      ["abs", `${sentinel}/secret`, /does not exist/],
      ["rel", "../sentinel/secret", /hard link target escapes the root/],
      ["etc", "/etc/passwd", /does not exist/],
    ];
    for (const [label, link, error] of cases) {
      const tar = await pyTar(`${tars}/${label}.tar`, [{ name: `h-${label}`, type: "hardlink", link }]);
      await assertRejects(() => applyFile(root, tar), error);
    }
    // Through a symlinked parent made in the same layer.
    const tar = await pyTar(`${tars}/via.tar`, [
      { name: "evil", type: "symlink", link: sentinel },
      { name: "h", type: "hardlink", link: "evil/secret" },
    ]);
    await assertRejects(() => applyFile(root, tar), /does not exist/);
    assertEquals(stat(`${sentinel}/secret`).nlink, 1);
  });
});

Deno.test("hostile: whiteouts cannot name a parent or reach outside", async () => {
  await inWorld(async ({ root, sentinel, tars }) => {
    await applyFile(root, await pyTar(`${tars}/0.tar`, [{ name: "sub/keep", data: "k" }]));
    const cases: [string, RegExp][] = [
      [".wh..", /does not name one entry/],
      [".wh...", /does not name one entry/],
      ["sub/.wh...", /does not name one entry/],
      ["../sentinel/.wh.secret", /path escapes the root/],
      ["../sentinel/.wh..wh..opq", /path escapes the root/],
    ];
    for (const [i, [name, error]] of cases.entries()) {
      const tar = await pyTar(`${tars}/${i + 1}.tar`, [{ name, data: "" }]);
      await assertRejects(() => applyFile(root, tar), error);
    }
    // Absolute whiteouts are root-relative: nothing there, nothing removed.
    await applyFile(
      root,
      await pyTar(`${tars}/abs.tar`, [
        { name: `${sentinel}/.wh.secret`, data: "" },
        { name: `${sentinel}/sub/.wh..wh..opq`, data: "" },
      ]),
    );
    assertEquals(await Deno.readTextFile(`${root}/sub/keep`), "k");
  });
});

Deno.test("hostile: a directory replaced by a symlink in the middle of a layer", async () => {
  await inWorld(async ({ root, sentinel, tars }) => {
    await assertRejects(
      async () =>
        await applyFile(
          root,
          await pyTar(`${tars}/swap.tar`, [
            { name: "d", type: "dir" },
            { name: "d/f", data: "f" },
            { name: "d", type: "symlink", link: sentinel },
            { name: "d/g", data: "g" },
          ]),
        ),
      /^"d\/g": .*leads nowhere/,
    );
    assertEquals(kind(`${root}/d`), S_IFLNK);
  });
});

// ---------------------------------------------------------------------------
// Atomic assembly

function layerOf(path: string, mediaType = "tar"): LayerSource {
  return { mediaType, name: path.slice(path.lastIndexOf("/") + 1), open: async () => (await Deno.open(path)).readable };
}

Deno.test("assembleRootfs: layers in order, renamed into place, replacing an existing output", async () => {
  await inWorld(async ({ src, tars }) => {
    const output = `${src}/rootfs/image`;
    const l1 = await compress(
      await pyTar(`${tars}/1.tar`, [{ name: "a", data: "1" }, { name: "b", data: "1" }]),
      "gzip",
    );
    const l2 = await pyTar(`${tars}/2.tar`, [{ name: ".wh.b", data: "" }, { name: "c", data: "2" }]);
    const notices: string[] = [];
    await assembleRootfs(output, [layerOf(l1, "tar+gzip"), layerOf(l2)], {
      rootless: !isRoot,
      onNotice: (m) => notices.push(m),
    });
    assertEquals(allPaths(output), ["a", "c"]);
    assertEquals(perm(output), 0o755);
    assertEquals([...Deno.readDirSync(`${src}/rootfs`)].map((e) => e.name), ["image"], "no temporary folder left");

    // Again over it, from an async iterable: the old tree is replaced whole.
    const l3 = await pyTar(`${tars}/3.tar`, [{ name: "d", data: "3" }]);
    async function* layers() {
      yield layerOf(l3);
    }
    await assembleRootfs(output, layers(), { rootless: !isRoot });
    assertEquals(allPaths(output), ["d"]);
    assertEquals([...Deno.readDirSync(`${src}/rootfs`)].map((e) => e.name), ["image"]);
  });
});

Deno.test("assembleRootfs: a failing layer leaves the previous output untouched and no temporary folder", async () => {
  await inWorld(async ({ src, tars }) => {
    const parent = `${src}/rootfs`;
    const output = `${parent}/image`;
    await Deno.mkdir(output, { recursive: true });
    await Deno.writeTextFile(`${output}/previous`, "previous image");
    const before = await snapshot(output);
    // A temporary folder from a process that died is cleaned up on the way.
    await Deno.mkdir(`${parent}/.image.gcr-tmp-999999999-abcdef/x`, { recursive: true });

    const good = await pyTar(`${tars}/good.tar`, [{ name: "bin/sh", data: "sh" }]);
    // The bad layer is gzip: its error must also stop the decompression worker.
    const bad = await compress(
      await pyTar(`${tars}/bad.tar`, [{ name: "ok", data: "" }, { name: "../escape", data: "x" }]),
      "gzip",
    );
    await assertRejects(
      () =>
        assembleRootfs(output, [layerOf(good), layerOf(bad, "tar+gzip")], { rootless: !isRoot, inflateInWorker: true }),
      /^layer 2 \(bad\.tar\.gz\): "\.\.\/escape": path escapes the root$/,
    );
    assertEquals(await snapshot(output), before, "the previous output changed");
    assertEquals([...Deno.readDirSync(parent)].map((e) => e.name), ["image"], "a temporary folder was left");

    // No previous output: nothing appears at all. A stream that fails mid-way counts too.
    const fresh = `${parent}/fresh`;
    const failing: LayerSource = {
      mediaType: "tar",
      open: () =>
        new ReadableStream({
          start(controller) {
            controller.enqueue(new Uint8Array(512).fill(0x41));
            controller.error(new Error("connection reset"));
          },
        }),
    };
    await assertRejects(() => assembleRootfs(fresh, [layerOf(good), failing], { rootless: !isRoot }), /^layer 2: /);
    assertEquals([...Deno.readDirSync(parent)].map((e) => e.name), ["image"]);
  });
});

// ---------------------------------------------------------------------------
// Rootless subset and struct layouts

Deno.test({
  ...named("rootless subset as user gcrtest through setpriv", needs("setpriv", "useradd")),
  sanitizeResources: false,
  async fn() {
    const user = await ensureUser(RANGED_USER);
    const home = await Deno.makeTempDir({ prefix: "gcr-rootless-home-" });
    try {
      // A world-readable copy of the code: the checkout may sit where the
      // user cannot read (CI clones under root's folders).
      const repo = new URL("../../", import.meta.url).pathname;
      await Deno.mkdir(`${home}/src/tests`, { recursive: true });
      await sh("cp", ["-r", `${repo}/deno.json`, `${repo}/ffi`, `${repo}/host`, `${repo}/image`, `${home}/src/`]);
      await sh("cp", ["-r", `${repo}/tests/image`, `${repo}/tests/helpers.ts`, `${home}/src/tests/`]);
      await sh("chown", ["-R", `${user.uid}:${user.gid}`, home]);
      await sh("chmod", ["-R", "u+rwX", home]);
      const out = await new Deno.Command("setpriv", {
        args: asUser(
          user,
          [Deno.execPath(), "test", "-A", "--no-check", `${home}/src/tests/image/rootless_cases.ts`],
          { home, env: { NO_COLOR: "1", DENO_DIR: `${home}/deno` } },
        ),
        cwd: home,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert(out.success, `the rootless run failed:\n${text}`);
      assert(/ok \| [1-9]\d* passed \| 0 failed/.test(text), `no passing rootless run:\n${text}`);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  ...named("struct layouts in ffi/constants.ts FS_LAYOUT match the C headers", missingPrograms("cc")),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gcr-layout-" });
    try {
      await Deno.writeTextFile(
        `${dir}/layout.c`,
        `#define _GNU_SOURCE
#include <dirent.h>
#include <linux/openat2.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>
int main(void) {
  printf("%zu %zu %zu %zu\\n", sizeof(struct open_how), offsetof(struct open_how, flags),
         offsetof(struct open_how, mode), offsetof(struct open_how, resolve));
  printf("%zu %zu %zu\\n", sizeof(struct timespec), offsetof(struct timespec, tv_sec), offsetof(struct timespec, tv_nsec));
  printf("%zu %zu %zu %zu %zu\\n", offsetof(struct dirent64, d_ino), offsetof(struct dirent64, d_off),
         offsetof(struct dirent64, d_reclen), offsetof(struct dirent64, d_type), offsetof(struct dirent64, d_name));
  return 0;
}
`,
      );
      await sh("cc", ["-o", `${dir}/layout`, `${dir}/layout.c`]);
      const lines = (await sh(`${dir}/layout`, [])).trim().split("\n").map((l) => l.split(" ").map(Number));
      const { open_how, timespec, dirent64 } = FS_LAYOUT;
      assertEquals(lines[0], [open_how.size, open_how.flags, open_how.mode, open_how.resolve], "struct open_how");
      assertEquals(lines[1], [timespec.size, timespec.tv_sec, timespec.tv_nsec], "struct timespec");
      assertEquals(
        lines[2],
        [dirent64.d_ino, dirent64.d_off, dirent64.d_reclen, dirent64.d_type, dirent64.d_name],
        "struct linux_dirent64",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("applyLayer streams: file data reaches the disk while the layer is still arriving", async () => {
  // 64 MiB produced on the fly. Each time the applier asks for more, what it
  // was given must already be (nearly all) written: it holds a chunk or two,
  // never the layer.
  const root = await Deno.makeTempDir({ prefix: "gcr-stream-" });
  try {
    const size = 64 * 1024 * 1024;
    const header = new Uint8Array(512);
    const enc = new TextEncoder();
    header.set(enc.encode("big"), 0);
    header.set(enc.encode("0000644\0"), 100);
    header.set(enc.encode("0000000\0"), 108);
    header.set(enc.encode("0000000\0"), 116);
    header.set(enc.encode(size.toString(8).padStart(11, "0") + "\0"), 124);
    header.set(enc.encode("14000000000\0"), 136);
    header[156] = 0x30;
    header.set(enc.encode("ustar\x0000"), 257);
    header.fill(0x20, 148, 156);
    const sum = header.reduce((a, b) => a + b, 0);
    header.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    const chunkSize = 1024 * 1024;
    let sent = 0;
    let maxLag = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(header);
      },
      pull(c) {
        if (sent > 0) maxLag = Math.max(maxLag, sent - Deno.statSync(`${root}/big`).size);
        if (sent < size) {
          c.enqueue(new Uint8Array(chunkSize).fill(0x61));
          sent += chunkSize;
        } else {
          c.enqueue(new Uint8Array(1024));
          c.close();
        }
      },
    }, { highWaterMark: 1 });
    await applyLayer(root, stream, { mediaType: "tar", rootless: !isRoot });
    assertEquals(Deno.statSync(`${root}/big`).size, size);
    assert(maxLag <= 3 * chunkSize, `the applier held ${maxLag} bytes not yet written`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
