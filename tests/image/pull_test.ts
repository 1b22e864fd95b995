/**
 * `gcr pull`, `gcr images`, `img2rootfs` and `gcr run`'s pull of a missing
 * image, run as a user runs them (the ./gcr and ./img2rootfs scripts) against
 * Debian's real `docker-registry` with images built and pushed by umoci and
 * skopeo (tests/registry/fixtures.ts). Trees are compared with `umoci unpack`
 * of the same image, read by Python (types, modes, owners, sizes, contents,
 * link targets, mtimes, xattrs). No mocks. Run as root:
 * `deno test -A tests/image/pull_test.ts`.
 */
import {
  dockerArchive,
  type FaultyProxy,
  type ImageKind,
  LAYERS_DEEP_PATH,
  LAYERS_DIR_MTIME,
  LAYERS_GNU_LONG_NAME,
  LAYERS_LONG_NAME,
  maliciousLayers,
  ociLayout,
  pushImage,
  referenceUnpack,
  type Registry,
  startFaultyProxy,
  startRegistry,
} from "../registry/fixtures.ts";
import {
  describe,
  ensureUser,
  gcr as gcrAs,
  missingPrograms,
  named,
  needs,
  RANGED_USER,
  REPO,
  rootlessUnavailable,
  run,
  type RunResult,
  SCRATCH,
} from "../fixtures.ts";
import {
  assert,
  assertDeepEquals,
  assertEquals,
  assertIncludes,
  assertMatch,
  assertThrows,
  lines,
} from "../helpers.ts";
import { defaultName, parseSource, recordPath } from "../../image/pull.ts";
import { parsePullArgs } from "../../commands/pull.ts";
import { exists } from "../../host/files.ts";

/** What every pull test needs besides root: a registry, and tools to build and fill it. */
const REGISTRY_TOOLS = ["docker-registry", "skopeo", "umoci", "htpasswd", "openssl"];

/** A test of gcr pull against a real registry, ignored with the reason where one cannot run. */
function pullTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ ...named(name, needs(...REGISTRY_TOOLS)), sanitizeResources: false, sanitizeOps: false }, fn);
}
const GCR = `${REPO}/gcr`;
const IMG2ROOTFS = `${REPO}/img2rootfs`;

/** A scratch folder with `rootfs/` and a private blob cache, removed afterwards. */
interface World {
  dir: string;
  rootfs: string;
  cache: string;
  env: Record<string, string>;
}

async function inWorld(body: (w: World) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gcr-pull-test-" });
  const w = { dir, rootfs: `${dir}/rootfs`, cache: `${dir}/cache`, env: { GCR_CACHE: `${dir}/cache` } };
  try {
    await body(w);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function withRegistry<T>(body: (reg: Registry) => Promise<T>, auth?: "basic" | "token"): Promise<T> {
  const reg = await startRegistry(auth ? { auth } : {});
  try {
    return await body(reg);
  } finally {
    await reg.stop();
  }
}

function gcr(w: World, args: string[], more: { stdin?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(GCR, args, { env: w.env, cwd: w.dir, timeoutMs: more.timeoutMs ?? 120_000, ...more });
}

async function pullOk(w: World, args: string[], more: { stdin?: string } = {}): Promise<RunResult> {
  const result = await gcr(w, ["pull", "--rootfs-dir", w.rootfs, ...args], more);
  assertEquals(result.code, 0, "gcr pull should succeed", describe(result));
  return result;
}

/** A failure as gcr reports it: exit 125, one line `gcr: …`. */
function assertFailure(result: RunResult, pattern: RegExp): void {
  assertEquals(result.code, 125, "exit status", describe(result));
  assertEquals(lines(result.stderr).filter((l) => l.startsWith("gcr:")).length, 1, "one gcr: line", describe(result));
  assertMatch(result.stderr, pattern, "the error says why", describe(result));
}

const SNAPSHOT_PY = `
import hashlib, json, os, stat, sys
root = sys.argv[1]
skip_mtime = set(sys.argv[2:])
out = {}
def walk(p, rel):
    st = os.lstat(p)
    extra = ""
    if stat.S_ISLNK(st.st_mode): extra = os.readlink(p)
    elif stat.S_ISREG(st.st_mode):
        with open(p, "rb") as f: extra = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode): extra = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    xattrs = sorted(f"{k}={os.getxattr(p, k, follow_symlinks=False).hex()}" for k in os.listxattr(p, follow_symlinks=False))
    mtime = "" if rel in skip_mtime else int(st.st_mtime)
    size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
    out[rel] = f"{oct(st.st_mode)} {st.st_uid}:{st.st_gid} {size} {mtime} {extra} {' '.join(xattrs)}"
    if stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(p)): walk(os.path.join(p, name), os.path.join(rel, name))
walk(root, ".")
print(json.dumps(out))
`;

/** Everything observable about a tree except inode numbers, read by Python (so xattrs too). */
async function tree(dir: string): Promise<Record<string, string>> {
  const result = await run("/usr/bin/python3", ["-c", SNAPSHOT_PY, dir, "."]);
  assertEquals(result.code, 0, "snapshot", describe(result));
  return JSON.parse(result.stdout);
}

function assertSameTree(actual: Record<string, string>, expected: Record<string, string>, what: string): void {
  const differences: string[] = [];
  for (const path of new Set([...Object.keys(actual), ...Object.keys(expected)])) {
    if (actual[path] !== expected[path]) {
      differences.push(
        `${path}\n    gcr:      ${actual[path] ?? "(missing)"}\n    expected: ${expected[path] ?? "(missing)"}`,
      );
    }
  }
  assert(
    differences.length === 0,
    `${what}: ${differences.length} differences\n${differences.slice(0, 20).join("\n")}`,
  );
}

async function umociTree(kind: ImageKind): Promise<Record<string, string>> {
  const dest = `${await Deno.makeTempDir({ prefix: "gcr-umoci-" })}/bundle`;
  try {
    return await tree(await referenceUnpack(kind, dest));
  } finally {
    await Deno.remove(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
  }
}

/** The first layer digest of an image kind's OCI layout (to aim a fault at it). */
async function layerDigest(kind: ImageKind): Promise<string> {
  const { path, tag } = await ociLayout(kind);
  const index = JSON.parse(await Deno.readTextFile(`${path}/index.json`));
  const entry = index.manifests.find((m: { annotations?: Record<string, string> }) =>
    m.annotations?.["org.opencontainers.image.ref.name"] === tag
  );
  const manifest = JSON.parse(await Deno.readTextFile(`${path}/blobs/sha256/${entry.digest.slice(7)}`));
  return manifest.layers[0].digest;
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(path));
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

function blobGets(proxy: FaultyProxy): number {
  return proxy.stats.requests.filter((r) => r.method === "GET" && /\/blobs\//.test(r.path)).length;
}

// ---------------------------------------------------------------------------
// Without a server

Deno.test("sources and default names: repository's last part, archive or layout base name", () => {
  assertEquals(defaultName("alpine"), "alpine", "alpine");
  assertEquals(defaultName("localhost:5000/team/app:1.2"), "app", "registry with port, tag");
  assertEquals(defaultName(`ubuntu@sha256:${"a".repeat(64)}`), "ubuntu", "digest");
  assertEquals(defaultName("docker://quay.io/x/y"), "y", "skopeo's docker:// form");
  assertEquals(defaultName("docker-archive:./saved.tar"), "saved", "docker-archive");
  assertEquals(defaultName("oci:./layout:tag"), "layout", "oci with a tag");
  assertEquals(parseSource("oci:/nonexistent/layout:v1"), { kind: "oci", path: "/nonexistent/layout", tag: "v1" });
  assertEquals(parseSource("oci:/nonexistent/layout"), { kind: "oci", path: "/nonexistent/layout" });
  assertEquals(recordPath("/a/rootfs/ubuntu2004/"), "/a/rootfs/.gcr-image-ubuntu2004.json", "record beside");
  assertThrows(() => parseSource("Not A Reference"), /invalid image reference/, "a bad reference is refused");
});

Deno.test("command lines: Go flag forms for img2rootfs, flags on both sides of gcr pull's source", () => {
  const want = { source: "r", output: "o", insecure: false, passwordStdin: false, quiet: false };
  assertDeepEquals(parsePullArgs(["-image", "r", "-output", "o"], "img2rootfs"), want, "-image -output");
  assertDeepEquals(parsePullArgs(["--image=r", "--output=o"], "img2rootfs"), want, "--image= --output=");
  assertDeepEquals(parsePullArgs(["-image=r", "-output", "o", "-insecure", "-q=false"], "img2rootfs"), {
    ...want,
    insecure: true,
  }, "booleans");
  assertDeepEquals(parsePullArgs(["--platform", "linux/arm64", "alpine", "-q"], "pull"), {
    source: "alpine",
    platform: "linux/arm64",
    insecure: false,
    passwordStdin: false,
    quiet: true,
  }, "gcr pull");
  const failures: [string[], "pull" | "img2rootfs", RegExp][] = [
    [["-image", "r", "-output", "o", "extra"], "img2rootfs", /unexpected argument "extra"/],
    [["-output", "o"], "img2rootfs", /missing -image/],
    [["-image", "r", "-q=maybe"], "img2rootfs", /invalid boolean value "maybe" for -q/],
    [["a", "b"], "pull", /one source at a time/],
    [[], "pull", /missing <source>/],
    [["--password-stdin", "a"], "pull", /--password-stdin needs --username/],
    [["--username", "u", "a"], "pull", /--username needs --password-stdin/],
    [["--name", "../x", "a"], "pull", /invalid rootfs name/],
    [["--platform"], "pull", /option --platform needs a value/],
  ];
  for (const [args, command, pattern] of failures) {
    const error = assertThrows(() => parsePullArgs(args, command), pattern, `${command} ${args.join(" ")}`);
    assertEquals(error.name, "UsageError", `${args.join(" ")}: a usage error`);
  }
});

// ---------------------------------------------------------------------------
// Against a real registry

pullTest("pull busybox: the tree equals umoci unpack's; the record sits beside the rootfs", async () => {
  await inWorld((w) =>
    withRegistry(async (reg) => {
      const pushed = await pushImage(reg, "team/busybox", "busybox");
      const result = await pullOk(w, [pushed.ref]);
      assertEquals(result.stdout.trim(), `${w.rootfs}/busybox`, "stdout is the rootfs folder", describe(result));
      assertSameTree(await tree(`${w.rootfs}/busybox`), await umociTree("busybox"), "busybox");
      // Nothing but the image inside; the record next to it.
      assertEquals(names(w.rootfs), [".gcr-image-busybox.json", "busybox"], "rootfs-dir holds the folder and record");
      const record = readJson(`${w.rootfs}/.gcr-image-busybox.json`);
      assertEquals(record.reference, `${reg.url}/team/busybox:latest`, "recorded reference");
      assertEquals(record.digest, pushed.digest, "recorded digest");
      assertEquals(record.platform, "linux/amd64", "recorded platform");
      assertMatch(String(record.configDigest), /^sha256:[0-9a-f]{64}$/, "recorded config digest");
      assert(!Number.isNaN(Date.parse(String(record.pulled))), "recorded date");
    })
  );
});

pullTest(
  "pull the layers image: whiteouts, opaque dir, hard links, long names, xattrs, setuid, owners",
  async () => {
    await inWorld((w) =>
      withRegistry(async (reg) => {
        const pushed = await pushImage(reg, "layers", "layers");
        await pullOk(w, ["-q", pushed.ref]);
        const r = `${w.rootfs}/layers`;
        const has = (p: string) => exists(`${r}/${p}`);
        for (const gone of ["gone-file", "gone-dir", "opq/old1", "opq/sub"]) assert(!has(gone), `${gone} is removed`);
        for (const kept of ["opq/new", "l2-added", "etc/l1file", "empty-dir", LAYERS_LONG_NAME, LAYERS_DEEP_PATH]) {
          assert(has(kept), `${kept} is there`);
        }
        assert(has(LAYERS_GNU_LONG_NAME), "the GNU long name is there");
        const t = await tree(r);
        assert(!Object.keys(t).some((p) => p.includes(".wh.")), "no whiteout file is written");
        assertEquals(Deno.readTextFileSync(`${r}/replaced`), "layer two\n", "layer 2 overwrote `replaced`");
        const ino = (p: string) => Deno.lstatSync(`${r}/${p}`).ino;
        assertEquals(ino("etc/hello-hardlink"), ino("etc/hello"), "hard link within a layer");
        assertEquals(ino("etc/l1-hardlink"), ino("etc/l1file"), "hard link to a lower layer's file");
        assertEquals(ino("etc/l1-abs-hardlink"), ino("etc/l1file"), "absolute hard link name");
        assertEquals((Deno.lstatSync(`${r}/setuid-file`).mode! & 0o7777).toString(8), "4755", "setuid survives");
        assertEquals((Deno.lstatSync(`${r}/tmp`).mode! & 0o7777).toString(8), "1777", "sticky tmp");
        assertIncludes(
          t["./xattr-file"]!,
          `user.test=${"hello".split("").map((c) => c.charCodeAt(0).toString(16)).join("")}`,
        );
        assertIncludes(t["./xattr-file"]!, "security.capability=", "file capability kept");
        assertEquals(Deno.readLinkSync(`${r}/abs-symlink`), "/etc/hello", "absolute symlink kept as is");
        const owned = Deno.lstatSync(`${r}/owned`);
        assertEquals([owned.uid, owned.gid, (owned.mode! & 0o7777).toString(8)], [1234, 5678, "640"], "owned");
        assert(Deno.lstatSync(`${r}/fifo`).isFile === false, "fifo is not a file");
        assertEquals(Deno.lstatSync(`${r}/mtime-dir`).mtime?.toISOString(), LAYERS_DIR_MTIME.replace("Z", ".000Z"));
        assertIncludes(t["./devnull"] ?? "", " 1:3 ", "char device 1:3 as root");
      })
    );
  },
);

pullTest("gzip, zstd and uncompressed layers, and Docker schema 2, give identical trees", async () => {
  await inWorld((w) =>
    withRegistry(async (reg) => {
      const kinds: ImageKind[] = ["busybox", "busybox-zstd", "busybox-uncompressed", "busybox-v2s2"];
      const trees: Record<string, string>[] = [];
      for (const kind of kinds) {
        const pushed = await pushImage(reg, kind, kind);
        await pullOk(w, ["-q", pushed.ref]);
        trees.push(await tree(`${w.rootfs}/${kind}`));
      }
      for (let i = 1; i < kinds.length; i++) assertSameTree(trees[i]!, trees[0]!, `${kinds[i]} against busybox`);
    })
  );
});

pullTest("--platform linux/arm64 picks the arm64 image of a multi-platform index", async () => {
  await inWorld((w) =>
    withRegistry(async (reg) => {
      const pushed = await pushImage(reg, "multi", "multiplatform");
      await pullOk(w, ["-q", "--platform", "linux/arm64", "--name", "arm", pushed.ref]);
      assertEquals(Deno.readTextFileSync(`${w.rootfs}/arm/etc/gcr-platform`), "linux/arm64\n", "the arm64 marker");
      assertEquals(readJson(`${w.rootfs}/.gcr-image-arm.json`).platform, "linux/arm64", "recorded platform");
      // The host's platform by default; the attestation entry is skipped.
      await pullOk(w, ["-q", "--name", "host", pushed.ref]);
      assert(Deno.statSync(`${w.rootfs}/host/bin/busybox`).isFile, "amd64 is busybox");
      const missing = await gcr(w, ["pull", "--rootfs-dir", w.rootfs, "--platform", "linux/s390x", pushed.ref]);
      assertFailure(missing, /no image for linux\/s390x in the index \(it has: linux\/amd64, linux\/arm64\)/);
    })
  );
});

pullTest("token auth: the anonymous bearer-token flow", async () => {
  await inWorld((w) =>
    withRegistry(async (reg) => {
      const pushed = await pushImage(reg, "team/app", "busybox", { tag: "1.2" });
      await pullOk(w, ["-q", pushed.ref]);
      assert(Deno.statSync(`${w.rootfs}/app/bin/busybox`).isFile, "pulled into app/ (the repository's last part)");
      assert(reg.tokenService!.requests.some((r) => r.status === 200), "a token was issued");
    }, "token")
  );
});

pullTest("basic auth: --username with --password-stdin; without, a clear 401", async () => {
  await inWorld((w) =>
    withRegistry(async (reg) => {
      const pushed = await pushImage(reg, "private", "busybox");
      const denied = await gcr(w, ["pull", "--rootfs-dir", w.rootfs, pushed.ref]);
      assertFailure(denied, /requires a user name and password: pass --username and --password-stdin/);
      assert(!exists(`${w.rootfs}/private`), "nothing written when denied");
      await pullOk(w, ["-q", "--username", reg.username, "--password-stdin", pushed.ref], {
        stdin: `${reg.password}\n`,
      });
      assert(Deno.statSync(`${w.rootfs}/private/bin/busybox`).isFile, "pulled with credentials");
      const wrong = await gcr(
        w,
        ["pull", "--rootfs-dir", w.rootfs, "-u", reg.username, "--password-stdin", pushed.ref],
        {
          stdin: "wrong\n",
        },
      );
      assertFailure(wrong, /401/);
    }, "basic")
  );
});

pullTest("docker-archive: and oci: sources give the registry's tree; digests are checked", async () => {
  await inWorld(async (w) => {
    const archive = await dockerArchive("busybox");
    const layout = await ociLayout("busybox");
    const expected = await umociTree("busybox");
    const fromArchive = await pullOk(w, ["-q", `docker-archive:${archive.path}`]);
    assertEquals(fromArchive.stdout.trim(), `${w.rootfs}/image`, "named after the archive", describe(fromArchive));
    assertSameTree(await tree(`${w.rootfs}/image`), expected, "docker-archive");
    assertEquals(readJson(`${w.rootfs}/.gcr-image-image.json`).reference, archive.repoTag, "the archive's RepoTag");
    await pullOk(w, ["-q", "--name", "layout", `oci:${layout.path}:${layout.tag}`]);
    assertSameTree(await tree(`${w.rootfs}/layout`), expected, "oci layout");
    // The multi-platform layout: an index inside the layout.
    const multi = await ociLayout("multiplatform");
    await pullOk(w, ["-q", "--name", "multi-arm", "--platform", "linux/arm64", `oci:${multi.path}:latest`]);
    assertEquals(Deno.readTextFileSync(`${w.rootfs}/multi-arm/etc/gcr-platform`), "linux/arm64\n", "arm64 marker");
    const noTag = await gcr(w, ["pull", "--rootfs-dir", w.rootfs, `oci:${multi.path}:nosuch`]);
    assertFailure(noTag, /no tag "nosuch" in .* \(tags: /);

    // Docker 25's `docker save`: an OCI layout in the tar, manifest.json naming blobs/sha256/… (gzip layers).
    const index = JSON.parse(await Deno.readTextFile(`${layout.path}/index.json`));
    const top = index.manifests.find((m: { annotations?: Record<string, string> }) =>
      m.annotations?.["org.opencontainers.image.ref.name"] === layout.tag
    );
    const manifest = JSON.parse(await Deno.readTextFile(`${layout.path}/blobs/sha256/${top.digest.slice(7)}`));
    const staging = `${w.dir}/docker25`;
    await Deno.mkdir(staging);
    await Deno.writeTextFile(
      `${staging}/manifest.json`,
      JSON.stringify([{
        Config: `blobs/sha256/${manifest.config.digest.slice(7)}`,
        RepoTags: ["gcr-test/docker25:latest"],
        Layers: manifest.layers.map((l: { digest: string }) => `blobs/sha256/${l.digest.slice(7)}`),
      }]),
    );
    const tarred = await run("tar", [
      "-cf",
      `${w.dir}/docker25.tar`,
      "-C",
      layout.path,
      "oci-layout",
      "index.json",
      "blobs",
      "-C",
      staging,
      "manifest.json",
    ]);
    assertEquals(tarred.code, 0, "tar", describe(tarred));
    await pullOk(w, ["-q", `docker-archive:${w.dir}/docker25.tar`]);
    assertSameTree(await tree(`${w.rootfs}/docker25`), expected, "docker 25 archive (OCI layout inside)");

    // A corrupted copy of each: one byte of the layer flipped.
    const badLayout = `${w.dir}/bad-layout`;
    await run("cp", ["-a", layout.path, badLayout]);
    const layer = `${badLayout}/blobs/sha256/${(await layerDigest("busybox")).slice(7)}`;
    const bytes = Deno.readFileSync(layer);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    Deno.writeFileSync(layer, bytes);
    const corrupt = await gcr(w, ["pull", "--rootfs-dir", w.rootfs, "--name", "layout", `oci:${badLayout}:latest`]);
    assertFailure(corrupt, /digest mismatch/);
    assertSameTree(await tree(`${w.rootfs}/layout`), expected, "the previous rootfs is untouched");

    const badArchive = `${w.dir}/bad.tar`;
    const tarBytes = Deno.readFileSync(archive.path);
    const listing = await run("tar", ["-tvf", archive.path]);
    assert(/\.tar$/m.test(listing.stdout), "the archive has a layer tar");
    // The layer tar is the first member (skopeo writes it first): flip a byte well inside it.
    tarBytes[512 + 4096] = tarBytes[512 + 4096]! ^ 0xff;
    Deno.writeFileSync(badArchive, tarBytes);
    // A fresh cache: with the layer cached (verified), the archive's copy would not be read at all.
    const corruptArchive = await run(
      GCR,
      ["pull", "--rootfs-dir", w.rootfs, "--name", "bad", `docker-archive:${badArchive}`],
      { env: { GCR_CACHE: `${w.dir}/fresh-cache` } },
    );
    assertFailure(corruptArchive, /digest mismatch .*diff_id/);
    assert(!names(w.rootfs).includes("bad"), "no rootfs from a corrupted archive");
  });
});

pullTest(
  "a corrupted blob: exit 125, a digest error, no rootfs written, the previous one untouched",
  async () => {
    await inWorld((w) =>
      withRegistry(async (reg) => {
        const pushed = await pushImage(reg, "team/busybox", "busybox");
        await pullOk(w, ["-q", pushed.ref]);
        const before = await tree(`${w.rootfs}/busybox`);
        const proxy = await startFaultyProxy(reg, { mode: "corrupt-blob", digest: await layerDigest("busybox") });
        try {
          const ref = pushed.ref.replace(reg.url, proxy.url);
          const env = { GCR_CACHE: `${w.dir}/fresh-cache` };
          const replace = await run(GCR, ["pull", "--rootfs-dir", w.rootfs, ref], { env, timeoutMs: 120_000 });
          assertFailure(replace, /digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:/);
          assertSameTree(await tree(`${w.rootfs}/busybox`), before, "the previous rootfs");
          const fresh = await run(GCR, ["pull", "--rootfs-dir", w.rootfs, "--name", "fresh", ref], { env });
          assertFailure(fresh, /digest mismatch/);
          assertEquals(names(w.rootfs), [".gcr-image-busybox.json", "busybox"], "no new folder, no temporary left");
          assert(proxy.stats.corrupted > 0, "the proxy corrupted the layer");
        } finally {
          await proxy.stop();
        }
      })
    );
  },
);

pullTest(
  "a tampered layer blob, gzip or not: one error line, no rootfs folder, no cached blob; then a clean pull",
  async () => {
    await inWorld((w) =>
      withRegistry(async (reg) => {
        // The uncompressed layer extracts without a hitch whatever its bytes: only the digest can stop it.
        for (const kind of ["busybox", "busybox-uncompressed"] as const) {
          const pushed = await pushImage(reg, kind, kind);
          const digest = await layerDigest(kind);
          const blob = `${w.cache}/blobs/sha256/${digest.slice(7)}`;
          const proxy = await startFaultyProxy(reg, { mode: "corrupt-blob", digest });
          try {
            const ref = pushed.ref.replace(reg.url, proxy.url);
            const result = await gcr(w, ["pull", "-q", "--rootfs-dir", w.rootfs, ref]);
            // The only line: neither the gzip stream's nor the tar's complaint about the same bad bytes.
            assertFailure(result, /^gcr: digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}\n$/);
            assertIncludes(result.stderr, `expected ${digest}`, `${kind}: names the layer's digest`);
            assert(proxy.stats.corrupted > 0, `${kind}: the proxy tampered with the layer`);
            assertEquals(names(w.rootfs), [], `${kind}: no rootfs folder, no temporary folder, no record`);
            assert(!exists(blob), `${kind}: the layer blob is not in the cache`);
            assertEquals(names(`${w.cache}/ingest`), [], `${kind}: no partial file is kept`);
          } finally {
            await proxy.stop();
          }
          await pullOk(w, ["-q", pushed.ref]);
          assertSameTree(await tree(`${w.rootfs}/${kind}`), await umociTree(kind), `${kind} pulled untampered`);
          assert(exists(blob), `${kind}: the verified layer is cached`);
          await Deno.remove(w.rootfs, { recursive: true });
        }
      })
    );
  },
);

pullTest(
  "a layer download that starts over under the extraction (Range ignored): extracted again from the cache",
  async () => {
    await inWorld((w) =>
      withRegistry(async (reg) => {
        const kind = "busybox-uncompressed";
        const pushed = await pushImage(reg, "restart", kind);
        // Half the layer, a pause in which the extraction takes what came, a cut; the resume gets the whole blob.
        const proxy = await startFaultyProxy(reg, {
          mode: "cut-blob",
          digest: await layerDigest(kind),
          holdMs: 300,
          ignoreRange: true,
        });
        try {
          const result = await gcr(w, ["pull", "--rootfs-dir", w.rootfs, pushed.ref.replace(reg.url, proxy.url)]);
          assertEquals(result.code, 0, "the pull succeeds", describe(result));
          assertEquals(proxy.stats.cuts, 1, "the proxy cut the layer once");
          assert(
            proxy.stats.requests.some((r) => r.range !== null && r.status === 200),
            "the resume asked for a Range and got the whole blob",
          );
          assertMatch(result.stderr, /Extracting again from the cache: .*started over/, "says so", describe(result));
          assertSameTree(await tree(`${w.rootfs}/restart`), await umociTree(kind), "the tree");
          assertEquals(names(w.rootfs), [".gcr-image-restart.json", "restart"], "no temporary folder left");
        } finally {
          await proxy.stop();
        }
      })
    );
  },
);

pullTest("malicious layers: a clear error or a contained result, nothing written outside", async () => {
  const cases = await maliciousLayers();
  const escapes = () => names("/tmp").filter((n) => n.startsWith("gcr-escape"));
  const escapedBefore = escapes();
  await withRegistry(async (reg) => {
    for (const c of cases) {
      await inWorld(async (w) => {
        const pushed = await pushImage(reg, c.name, c.kind);
        // Output nested two levels down, a victim file beside it (fixtures' advice).
        const outer = `${w.dir}/outer`;
        const dir = `${outer}/images`;
        await Deno.mkdir(dir, { recursive: true });
        await Deno.writeTextFile(`${outer}/gcr-escape-victim`, "victim\n");
        await Deno.writeTextFile(`${dir}/gcr-escape-victim`, "victim\n");
        const beforeOuter = await tree(outer);
        const result = await gcr(w, ["pull", "-q", "--rootfs-dir", dir, "--name", "out", pushed.ref]);
        assert(result.code === 0 || result.code === 125, `${c.name}: exit 0 or 125`, describe(result));
        if (result.code === 125) assertFailure(result, /^gcr: .*layer 1|^gcr: .*layer 2/m);
        const after = await tree(outer);
        for (const [path, line] of Object.entries(beforeOuter)) {
          if (path === "./images") continue; // its mtime changes when out/ is made
          assertEquals(after[path], line, `${c.name} (${c.description}): ${path} is unchanged`);
        }
        const outside = Object.keys(after).filter((p) => !p.startsWith("./images/out") && !(p in beforeOuter));
        assertEquals(
          outside.filter((p) => p !== "./images/.gcr-image-out.json"),
          [],
          `${c.name}: nothing new outside`,
        );
      });
    }
  });
  assertEquals(escapes(), escapedBefore, "nothing named gcr-escape* appeared in /tmp");
});

pullTest(
  "a second pull downloads nothing and extracts nothing; another image under the name is extracted",
  async () => {
    await inWorld((w) =>
      withRegistry(async (reg) => {
        const pushed = await pushImage(reg, "team/busybox", "busybox");
        const proxy = await startFaultyProxy(reg, { mode: "none" });
        try {
          const ref = pushed.ref.replace(reg.url, proxy.url);
          await pullOk(w, ["-q", ref]);
          const first = blobGets(proxy);
          assert(first >= 2, `the first pull fetched the config and the layer (${first} blob GETs)`);
          const rootfs = `${w.rootfs}/busybox`;
          const before = Deno.statSync(rootfs).ino;
          const second = await pullOk(w, [ref]);
          assertEquals(blobGets(proxy) - first, 0, "blob GETs of the second pull");
          assertMatch(
            second.stderr + second.stdout,
            /Status: Image is up to date for /,
            "says so, as docker pull does",
          );
          assertMatch(second.stderr + second.stdout, /holds this image already: not extracted again/, "and why");
          assert(!/Extracting layer/.test(second.stderr + second.stdout), "no layer extracted", describe(second));
          assertEquals(Deno.statSync(rootfs).ino, before, "the rootfs folder is the one the first pull made");

          // Another image under the same name is extracted, in place of the old one.
          const other = await pushImage(reg, "team/busybox", "busybox-zstd");
          const third = await pullOk(w, [other.ref.replace(reg.url, proxy.url)]);
          assertMatch(third.stderr + third.stdout, /Extracting layer/, "a new image is extracted", describe(third));
          assert(Deno.statSync(rootfs).ino !== before, "into a new rootfs folder");
        } finally {
          await proxy.stop();
        }
      })
    );
  },
);

pullTest("img2rootfs -image … -output …, Go flag forms; gcr images lists what was pulled", async () => {
  await inWorld((w) =>
    withRegistry(async (reg) => {
      const pushed = await pushImage(reg, "team/busybox", "busybox");
      const out = `${w.rootfs}/bb2004/`;
      const result = await run(IMG2ROOTFS, ["-image", pushed.ref, "-output", out, "-q"], { env: w.env });
      assertEquals(result.code, 0, "img2rootfs", describe(result));
      assert(Deno.statSync(`${w.rootfs}/bb2004/bin/busybox`).isFile, "img2rootfs wrote the rootfs");
      const again = await run(IMG2ROOTFS, [`--image=${pushed.ref}`, "--output", `${w.rootfs}/other`, "-q=true"], {
        env: w.env,
      });
      assertEquals(again.code, 0, "img2rootfs --image=", describe(again));
      const bad = await run(IMG2ROOTFS, ["-image", pushed.ref], { env: w.env });
      assertEquals(bad.code, 125, "img2rootfs without -output", describe(bad));
      assertMatch(bad.stderr, /^img2rootfs: missing -output \(see: img2rootfs -help\)\n$/, "one line", describe(bad));

      const images = await gcr(w, ["images", "--rootfs-dir", w.rootfs]);
      assertEquals(images.code, 0, "gcr images", describe(images));
      assertMatch(images.stdout, /^NAME +SOURCE +SIZE +PULLED$/m, "header", describe(images));
      assertMatch(
        images.stdout,
        new RegExp(`^bb2004 +${pushed.ref.replace(/[.]/g, "\\.")} +[0-9.]+MB +\\d{4}-\\d\\d-\\d\\dT`, "m"),
        "a row per rootfs",
        describe(images),
      );
      assertMatch(images.stdout, /^blob cache .*: 3 blobs, 1\.\d+MB$/m, "the cache", describe(images));

      const badFlag = await gcr(w, ["pull", "--bogus", pushed.ref]);
      assertEquals(badFlag.code, 125, "bad flag", describe(badFlag));
      assertMatch(badFlag.stderr, /^gcr: unknown option --bogus \(see: gcr help\)\n$/, "one line", describe(badFlag));
    })
  );
});

pullTest("end to end: pull debian, then gcr run bash; gcr run <reference> pulls first", async () => {
  await inWorld((w) =>
    withRegistry(async (reg) => {
      const debian = await pushImage(reg, "debian", "debian", { tag: "bookworm" });
      await pullOk(w, ["-q", debian.ref]);
      const ran = await gcr(w, [
        "run",
        "-q",
        "--rootfs-dir",
        w.rootfs,
        "debian",
        "bash",
        "-c",
        "ls -l /bin; apt-get --version",
      ]);
      assertEquals(ran.code, 0, "gcr run debian", describe(ran));
      assertMatch(ran.stdout, /^apt \d+\.\d+/m, "apt-get runs", describe(ran));
      assertMatch(ran.stdout, /bin -> usr\/bin|bash/, "ls -l /bin", describe(ran));

      const busybox = await pushImage(reg, "team/tools", "busybox", { tag: "1.0" });
      const first = await gcr(w, ["run", "--rootfs-dir", w.rootfs, busybox.ref, "echo", "hello"]);
      assertEquals(first.code, 0, "gcr run <reference>", describe(first));
      assertEquals(first.stdout, "hello\n", "the command ran", describe(first));
      assertIncludes(first.stderr, `gcr: pulling ${busybox.ref} into ${w.rootfs}/tools`, "says it pulls");
      const second = await gcr(w, ["run", "--rootfs-dir", w.rootfs, busybox.ref, "echo", "again"]);
      assertEquals(second.stdout, "again\n", "runs again", describe(second));
      assert(!second.stderr.includes("pulling"), "no second pull", describe(second));
      // The folder holds another image: never replaced behind the user's back.
      const clash = await gcr(w, ["run", "-q", "--rootfs-dir", w.rootfs, `${reg.url}/team/tools:2.0`, "true"]);
      assertFailure(clash, /holds .*team\/tools:1\.0: pull .* with --name/);
      // A pull that fails keeps gcr's error and appends the pull's reason.
      const missing = await gcr(w, ["run", "-q", "--rootfs-dir", w.rootfs, `${reg.url}/nosuch:1`, "true"]);
      assertFailure(missing, /^gcr: no rootfs at 127\.0\.0\.1:\d+\/nosuch:1: cannot pull .*not found/);
    })
  );
});

Deno.test({
  ...named(
    "rootless: pull into ~/.cache/gcr, no ownership, devices skipped; gcr run <reference> as the user",
    rootlessUnavailable() ?? missingPrograms(...REGISTRY_TOOLS),
  ),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const account = await ensureUser(RANGED_USER);
  const dir = `${SCRATCH}/pull-rootless-${Deno.pid}`;
  const cache = `${account.home}/.cache/gcr`;
  await Deno.remove(cache, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  await Deno.chown(dir, account.uid, account.gid);
  try {
    await withRegistry(async (reg) => {
      const layers = await pushImage(reg, "layers", "layers");
      const pulled = await gcrAs(["pull", "--rootfs-dir", dir, layers.ref], { user: RANGED_USER, rootfsDir: false });
      assertEquals(pulled.code, 0, "rootless pull", describe(pulled));
      assertMatch(
        pulled.stderr,
        /skipped device node "devnull" \(char-device 1:3\): not root/,
        "notice",
        describe(pulled),
      );
      const owned = Deno.lstatSync(`${dir}/layers/owned`);
      assertEquals([owned.uid, owned.gid], [account.uid, account.gid], "owned by the user, not 1234:5678");
      assertEquals((Deno.lstatSync(`${dir}/layers/setuid-file`).mode! & 0o7777).toString(8), "4755", "setuid kept");
      assert(exists(`${cache}/blobs/sha256`), `the blob cache is ${cache}`);

      const busybox = await pushImage(reg, "team/tools", "busybox");
      const ran = await gcrAs(["run", "--rootfs-dir", dir, busybox.ref, "sh", "-c", "echo hello; id -u"], {
        user: RANGED_USER,
        rootfsDir: false,
      });
      assertEquals(ran.code, 0, "rootless gcr run <reference>", describe(ran));
      assertEquals(ran.stdout, "hello\n0\n", "container root", describe(ran));
      assertIncludes(ran.stderr, "gcr: pulling", "it pulled first", describe(ran));
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
});
