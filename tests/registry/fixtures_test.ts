/**
 * Proves the registry fixtures with independent clients only (curl, skopeo, umoci, GNU tar,
 * Python's tarfile, getfattr/getcap), never with gcr's own puller.
 */
import {
  dockerArchive,
  type ImageKind,
  LAYERS_DEEP_PATH,
  LAYERS_DIR_MTIME,
  LAYERS_GNU_LONG_NAME,
  LAYERS_LONG_NAME,
  MALICIOUS_CASES,
  maliciousLayers,
  ociLayout,
  pushImage,
  pythonCommand,
  referenceUnpack,
  type Registry,
  run,
  startFaultyProxy,
  startRegistry,
} from "./fixtures.ts";
import { assert, assertEquals, assertMatch } from "../helpers.ts";

// ---------------------------------------------------------------- independent clients

interface CurlResult {
  /** curl's exit code (18: transfer closed with data outstanding). */
  exit: number;
  status: number;
  /** Response headers, lower-case names (the last response when redirects were followed). */
  headers: Record<string, string>;
  body: Uint8Array;
  text: string;
}

async function curl(url: string, args: string[] = []): Promise<CurlResult> {
  const dir = await Deno.makeTempDir({ prefix: "gcr-curl-" });
  try {
    const r = await run(
      "curl",
      ["-s", "-D", `${dir}/headers`, "-o", `${dir}/body`, "-w", "%{http_code}", ...args, url],
      { allowFail: true },
    );
    const headers: Record<string, string> = {};
    const raw = await Deno.readTextFile(`${dir}/headers`).catch(() => "");
    // With -L every response's headers are written: keep the last block.
    const blocks = raw.split(/\r?\n\r?\n/).filter((b) => b.trim());
    for (const line of (blocks.at(-1) ?? "").split(/\r?\n/).slice(1)) {
      const i = line.indexOf(":");
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const body = await Deno.readFile(`${dir}/body`).catch(() => new Uint8Array());
    return { exit: r.code, status: Number(r.stdout.trim()), headers, body, text: new TextDecoder().decode(body) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function sha256(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return "sha256:" + Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

const ACCEPT_ALL = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

function credsArgs(reg: Registry, flag = "--creds"): string[] {
  return reg.auth === "none" ? [] : [flag, `${reg.username}:${reg.password}`];
}

// deno-lint-ignore no-explicit-any
type Json = any;

async function skopeoInspect(ref: string, extra: string[] = []): Promise<Json> {
  const r = await run("skopeo", ["inspect", "--tls-verify=false", ...extra, ref]);
  return JSON.parse(r.stdout);
}

async function rawManifest(reg: Registry, ref: string): Promise<Json> {
  return await skopeoInspect(`docker://${reg.url}/${ref}`, ["--raw", ...credsArgs(reg)]);
}

async function withRegistry(
  opts: Parameters<typeof startRegistry>[0],
  fn: (reg: Registry) => Promise<void>,
): Promise<void> {
  const reg = await startRegistry(opts);
  try {
    await fn(reg);
  } finally {
    await reg.stop();
  }
}

/** Lists a tar (optionally compressed) with Python's tarfile: [type, name, linkname] per entry. */
async function tarList(data: Uint8Array): Promise<[string, string, string][]> {
  const py = "import sys,tarfile,io\n" +
    "t=tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()))\n" +
    "import json;print(json.dumps([[i.type.decode(),i.name,i.linkname] for i in t]))";
  const r = await run(await pythonCommand(), ["-c", py], { stdin: data });
  return JSON.parse(r.stdout);
}

// ---------------------------------------------------------------- registry and auth

Deno.test("registry without auth: /v2/ answers; stop() ends its own process and removes its folder", async () => {
  const reg = await startRegistry();
  const r = await curl(`http://${reg.url}/v2/`);
  assertEquals(r.status, 200);
  assertEquals(r.headers["docker-distribution-api-version"], "registry/2.0");
  assertMatch(reg.url, /^127\.0\.0\.1:\d+$/);
  const cmdline = await Deno.readTextFile(`/proc/${reg.pid}/cmdline`);
  assertMatch(cmdline, /^docker-registry\0serve\0/, "the pid is the registry itself");
  await reg.stop();
  await reg.stop(); // idempotent
  const after = await curl(`http://${reg.url}/v2/`);
  assertEquals(after.exit, 7, "connection refused after stop");
  assert(!(await Deno.stat(reg.dir).then(() => true, () => false)), "its folder is gone");
  assert(!(await Deno.stat(`/proc/${reg.pid}`).then(() => true, () => false)), "its process is gone");
});

Deno.test("registry with basic auth (htpasswd -B)", async () => {
  await withRegistry({ auth: "basic" }, async (reg) => {
    const anon = await curl(`http://${reg.url}/v2/`);
    assertEquals(anon.status, 401);
    assertMatch(anon.headers["www-authenticate"] ?? "", /^Basic realm="gcr-test-registry"/);
    const ok = await curl(`http://${reg.url}/v2/`, ["-u", `${reg.username}:${reg.password}`]);
    assertEquals(ok.status, 200);
    const bad = await curl(`http://${reg.url}/v2/`, ["-u", `${reg.username}:wrong`]);
    assertEquals(bad.status, 401);
    const pushed = await pushImage(reg, "library/busybox", "busybox");
    const info = await skopeoInspect(`docker://${pushed.ref}`, credsArgs(reg));
    assertEquals(info.Digest, pushed.digest);
    const noCreds = await run("skopeo", ["inspect", "--tls-verify=false", "--no-creds", `docker://${pushed.ref}`], {
      allowFail: true,
    });
    assert(noCreds.code !== 0, "anonymous skopeo inspect must fail");
  });
});

Deno.test("registry with token auth: Bearer challenge, anonymous pull token, credentials for push", async () => {
  await withRegistry({ auth: "token" }, async (reg) => {
    const ts = reg.tokenService!;
    const ping = await curl(`http://${reg.url}/v2/`);
    assertEquals(ping.status, 401);
    assertEquals(ping.headers["www-authenticate"], `Bearer realm="${ts.realm}",service="${ts.service}"`);

    const pushed = await pushImage(reg, "library/busybox", "busybox");
    assert(ts.requests.some((r) => r.user === reg.username && r.scopes.some((s) => s.endsWith(":pull,push"))));

    // No token: 401 with realm, service and the scope the client must ask for.
    const manifestUrl = `http://${reg.url}/v2/library/busybox/manifests/latest`;
    const denied = await curl(manifestUrl, ["-H", `Accept: ${ACCEPT_ALL}`]);
    assertEquals(denied.status, 401);
    assertEquals(
      denied.headers["www-authenticate"],
      `Bearer realm="${ts.realm}",service="${ts.service}",scope="repository:library/busybox:pull"`,
    );

    // Anonymous token from the realm.
    const scope = "repository:library/busybox:pull";
    const tok = await curl(`${ts.realm}?service=${ts.service}&scope=${encodeURIComponent(scope)}`);
    assertEquals(tok.status, 200);
    const body = JSON.parse(tok.text);
    assertEquals(Object.keys(body).sort(), ["access_token", "expires_in", "issued_at", "token"]);
    assertEquals(body.token, body.access_token);
    assertEquals(body.expires_in, 300);
    const header = JSON.parse(atob(body.token.split(".")[0].replaceAll("-", "+").replaceAll("_", "/")));
    assertEquals(header.alg, "ES256");
    assert(Array.isArray(header.x5c) && header.x5c.length === 1, "x5c carries the certificate");

    const got = await curl(manifestUrl, ["-H", `Accept: ${ACCEPT_ALL}`, "-H", `Authorization: Bearer ${body.token}`]);
    assertEquals(got.status, 200);
    assertEquals(got.headers["docker-content-digest"], pushed.digest);
    assertEquals(await sha256(got.body), pushed.digest);

    // The anonymous token does not allow a push.
    const push = await curl(`http://${reg.url}/v2/library/busybox/blobs/uploads/`, [
      "-X",
      "POST",
      "-H",
      `Authorization: Bearer ${body.token}`,
    ]);
    assertEquals(push.status, 401);
    // A forged signature is refused.
    const forged = body.token.slice(0, -4) + (body.token.endsWith("AAAA") ? "BBBB" : "AAAA");
    const bad = await curl(manifestUrl, ["-H", `Authorization: Bearer ${forged}`]);
    assertEquals(bad.status, 401);
    // Wrong credentials at the token service.
    const wrong = await curl(`${ts.realm}?service=${ts.service}&scope=${scope}`, ["-u", `${reg.username}:nope`]);
    assertEquals(wrong.status, 401);
    // An independent client does the whole anonymous flow.
    const info = await skopeoInspect(`docker://${pushed.ref}`, ["--no-creds"]);
    assertEquals(info.Digest, pushed.digest);
    assert(ts.requests.some((r) => r.user === null && r.granted.some((g) => g.actions.join() === "pull")));
  });
});

Deno.test("token service: OAuth2 POST form with refresh token; expired tokens refused", async () => {
  await withRegistry({ auth: "token" }, async (reg) => {
    const ts = reg.tokenService!;
    await pushImage(reg, "library/busybox", "busybox");
    const scope = "repository:library/busybox:pull";
    const form = (fields: Record<string, string>) =>
      Object.entries({ service: ts.service, scope, client_id: "gcr-test", ...fields }).flatMap(([k, v]) => [
        "--data-urlencode",
        `${k}=${v}`,
      ]);
    const byPassword = await curl(
      ts.realm,
      form({
        grant_type: "password",
        username: reg.username,
        password: reg.password,
        access_type: "offline",
      }),
    );
    assertEquals(byPassword.status, 200);
    const pw = JSON.parse(byPassword.text);
    assertEquals(Object.keys(pw).sort(), ["access_token", "expires_in", "issued_at", "refresh_token", "scope"]);
    const byRefresh = await curl(ts.realm, form({ grant_type: "refresh_token", refresh_token: pw.refresh_token }));
    assertEquals(byRefresh.status, 200);
    const manifestUrl = `http://${reg.url}/v2/library/busybox/manifests/latest`;
    for (const t of [pw.access_token, JSON.parse(byRefresh.text).access_token]) {
      const r = await curl(manifestUrl, ["-H", `Accept: ${ACCEPT_ALL}`, "-H", `Authorization: Bearer ${t}`]);
      assertEquals(r.status, 200);
    }
    const wrong = await curl(ts.realm, form({ grant_type: "password", username: reg.username, password: "x" }));
    assertEquals(wrong.status, 401);
    assertEquals(ts.requests.filter((r) => r.method === "POST").length, 3);
  });
  // docker-registry 2.8 accepts a token until 60 s after its exp: a negative lifetime past
  // that makes every token already expired.
  await withRegistry({ auth: "token", tokenExpiresIn: -90 }, async (reg) => {
    const ts = reg.tokenService!;
    const tok = JSON.parse((await curl(`${ts.realm}?service=${ts.service}&scope=repository:x/y:pull`)).text);
    assertEquals(tok.expires_in, -90);
    const r = await curl(`http://${reg.url}/v2/x/y/tags/list`, ["-H", `Authorization: Bearer ${tok.token}`]);
    assertEquals(r.status, 401);
    assertMatch(r.headers["www-authenticate"] ?? "", /error="invalid_token"/);
  });
});

Deno.test("token auth with anonymousPull: false refuses anonymous clients", async () => {
  await withRegistry({ auth: "token", anonymousPull: false }, async (reg) => {
    const pushed = await pushImage(reg, "private/busybox", "busybox");
    const anon = await run("skopeo", ["inspect", "--tls-verify=false", "--no-creds", `docker://${pushed.ref}`], {
      allowFail: true,
    });
    assert(anon.code !== 0, "anonymous inspect must fail");
    const info = await skopeoInspect(`docker://${pushed.ref}`, credsArgs(reg));
    assertEquals(info.Digest, pushed.digest);
  });
});

// ---------------------------------------------------------------- images

Deno.test("busybox images: gzip, zstd, uncompressed, Docker schema 2", async () => {
  await withRegistry({}, async (reg) => {
    const cases: [ImageKind, string, string][] = [
      ["busybox", "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.layer.v1.tar+gzip"],
      ["busybox-zstd", "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.layer.v1.tar+zstd"],
      ["busybox-uncompressed", "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.layer.v1.tar"],
      [
        "busybox-v2s2",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
      ],
    ];
    const diffIds = new Set<string>();
    for (const [kind, manifestType, layerType] of cases) {
      const p = await pushImage(reg, "busybox", kind, { tag: kind });
      const m = await rawManifest(reg, `busybox:${kind}`);
      assertEquals(m.mediaType ?? manifestType, manifestType, kind);
      assertEquals(m.layers.length, 1, kind);
      assertEquals(m.layers[0].mediaType, layerType, kind);
      const info = await skopeoInspect(`docker://${p.ref}`);
      assertEquals([info.Os, info.Architecture], ["linux", "amd64"], kind);
      const config = await skopeoInspect(`docker://${p.ref}`, ["--config"]);
      assertEquals(config.config.Cmd, ["sh"], kind);
      diffIds.add(config.rootfs.diff_ids[0]);
      // The layer through plain HTTP: decompress with the matching tool, list with tarfile.
      const blob = await curl(`http://${reg.url}/v2/busybox/blobs/${m.layers[0].digest}`);
      assertEquals(blob.status, 200, kind);
      assertEquals(await sha256(blob.body), m.layers[0].digest, kind);
      let tar = blob.body;
      if (layerType.endsWith("zstd")) tar = await zstdDecompress(blob.body);
      const entries = await tarList(tar);
      const byName = new Map(entries.map((e) => [e[1], e]));
      assertEquals(byName.get("bin/busybox")?.[0], "0", `${kind}: bin/busybox is a regular file`);
      assertEquals(byName.get("bin/sh"), ["2", "bin/sh", "/bin/busybox"], kind);
    }
    assertEquals(diffIds.size, 1, "every variant holds the same uncompressed tar");
  });
});

async function zstdDecompress(data: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("zstd", { args: ["-d", "-c", "-q"], stdin: "piped", stdout: "piped" }).spawn();
  const w = child.stdin.getWriter();
  await w.write(data);
  await w.close();
  const out = await child.output();
  assert(out.success, "zstd -d");
  return out.stdout;
}

Deno.test("multi-platform OCI index with attestation, and Docker manifest list", async () => {
  await withRegistry({}, async (reg) => {
    const p = await pushImage(reg, "multi", "multiplatform");
    const idx = await rawManifest(reg, "multi:latest");
    assertEquals(idx.mediaType, "application/vnd.oci.image.index.v1+json");
    assertEquals(
      idx.manifests.map((m: Json) => `${m.platform.os}/${m.platform.architecture}`),
      ["linux/amd64", "linux/arm64", "unknown/unknown"],
    );
    const att = idx.manifests[2];
    assertEquals(att.annotations["vnd.docker.reference.type"], "attestation-manifest");
    assertEquals(att.annotations["vnd.docker.reference.digest"], idx.manifests[0].digest);
    const attManifest = await rawManifest(reg, `multi@${att.digest}`);
    assertEquals(attManifest.layers[0].mediaType, "application/vnd.in-toto+json");
    // Platform selection by an independent client.
    const amd = await skopeoInspect(`docker://${p.ref}`, ["--override-arch", "amd64"]);
    assertEquals(amd.Architecture, "amd64");
    const amdManifest = await rawManifest(reg, `multi@${idx.manifests[0].digest}`);
    assertEquals(amd.Layers, [amdManifest.layers[0].digest]);
    const arm = await skopeoInspect(`docker://${p.ref}`, ["--override-arch", "arm64"]);
    assertEquals(arm.Architecture, "arm64");
    const armManifest = await rawManifest(reg, `multi@${idx.manifests[1].digest}`);
    assertEquals(arm.Layers, [armManifest.layers[0].digest]);
    const armLayer = await curl(`http://${reg.url}/v2/multi/blobs/${arm.Layers[0]}`);
    const names = (await tarList(armLayer.body)).map((e) => e[1]);
    assert(names.includes("etc/gcr-platform"), "arm64 marker file");

    await pushImage(reg, "multi", "multiplatform-v2s2", { tag: "v2s2" });
    const list = await rawManifest(reg, "multi:v2s2");
    assertEquals(list.mediaType, "application/vnd.docker.distribution.manifest.list.v2+json");
    assertEquals(list.manifests.map((m: Json) => m.platform.architecture), ["amd64", "arm64"]);
    assertEquals(
      list.manifests.map((m: Json) => m.mediaType),
      Array(2).fill("application/vnd.docker.distribution.manifest.v2+json"),
    );
    const armV2 = await skopeoInspect(`docker://${reg.url}/multi:v2s2`, ["--override-arch", "arm64"]);
    assertEquals(armV2.Architecture, "arm64");
  });
});

Deno.test("layers image: umoci unpack of the pushed image gives the expected tree", async () => {
  await withRegistry({}, async (reg) => {
    const p = await pushImage(reg, "layers", "layers");
    const m = await rawManifest(reg, "layers:latest");
    assertEquals(m.layers.length, 3);
    const tars = [];
    for (const l of m.layers) {
      const b = await curl(`http://${reg.url}/v2/layers/blobs/${l.digest}`);
      assertEquals(await sha256(b.body), l.digest);
      tars.push(await tarList(b.body));
    }
    const names = tars.map((t) => t.map((e) => e[1]));
    assert(names[0]!.includes(LAYERS_LONG_NAME) && names[0]!.includes(LAYERS_DEEP_PATH), "PAX long names in layer 1");
    assert(names[1]!.includes(".wh.gone-file") && names[1]!.includes(".wh.gone-dir"), "whiteouts in layer 2");
    assertEquals(
      names[2]!.indexOf("opq/.wh..wh..opq"),
      names[2]!.indexOf("opq/new") + 1,
      "opaque marker after opq/new",
    );
    assert(names[2]!.includes(LAYERS_GNU_LONG_NAME));
    assertEquals(tars[2]!.find((e) => e[1] === "etc/l1-abs-hardlink"), ["1", "etc/l1-abs-hardlink", "/etc/l1file"]);
    // The raw third layer uses a GNU long-name record.
    const l3 = await curl(`http://${reg.url}/v2/layers/blobs/${m.layers[2].digest}`);
    const raw = await run("sh", ["-c", "gzip -dc | grep -c '././@LongLink'"], { stdin: l3.body });
    assertEquals(raw.stdout.trim(), "1");

    // Pull with skopeo, unpack with umoci: the reference result of applying the layers.
    const dir = await Deno.makeTempDir({ prefix: "gcr-layers-test-" });
    try {
      await run("skopeo", ["copy", "-q", "--src-tls-verify=false", `docker://${p.ref}`, `oci:${dir}/oci:x`]);
      await run("umoci", ["unpack", "--image", `${dir}/oci:x`, `${dir}/bundle`]);
      const root = `${dir}/bundle/rootfs`;
      const has = (path: string) => Deno.lstat(`${root}/${path}`).then(() => true, () => false);
      assert(!(await has("gone-file")) && !(await has("gone-dir")), "whited out");
      assertEquals([...Deno.readDirSync(`${root}/opq`)].map((e) => e.name), ["new"], "opaque dir");
      assertEquals(await Deno.readTextFile(`${root}/replaced`), "layer two\n");
      const ino = (path: string) => Deno.lstatSync(`${root}/${path}`).ino;
      assertEquals(ino("etc/l1-hardlink"), ino("etc/l1file"), "hard link across layers");
      assertEquals(ino("etc/l1-abs-hardlink"), ino("etc/l1file"), "absolute-looking hard link name");
      assertEquals(ino("etc/hello-hardlink"), ino("etc/hello"));
      assertEquals((await run("getfattr", ["--only-values", "-n", "user.test", `${root}/xattr-file`])).stdout, "hello");
      assertMatch((await run("getcap", [`${root}/xattr-file`])).stdout, /cap_net_raw[=+]e?p/);
      assertEquals(Deno.lstatSync(`${root}/setuid-file`).mode! & 0o7777, 0o4755);
      assertEquals(Deno.lstatSync(`${root}/tmp`).mode! & 0o7777, 0o1777);
      assertEquals(await Deno.readLink(`${root}/symlink`), "etc/hello");
      assertEquals(await Deno.readLink(`${root}/abs-symlink`), "/etc/hello");
      assert(Deno.lstatSync(`${root}/fifo`).isFifo, "fifo");
      assert(Deno.lstatSync(`${root}/devnull`).isCharDevice, "char device");
      assertEquals(Deno.lstatSync(`${root}/mtime-dir`).mtime?.toISOString(), new Date(LAYERS_DIR_MTIME).toISOString());
      const owned = Deno.lstatSync(`${root}/owned`);
      assertEquals([owned.uid, owned.gid, owned.mode! & 0o777], [1234, 5678, 0o640]);
      assertEquals(await Deno.readTextFile(`${root}/${LAYERS_DEEP_PATH}`), "deep path\n");
      assertEquals(await Deno.readTextFile(`${root}/${LAYERS_LONG_NAME}`), "long name\n");
      assert(await has(LAYERS_GNU_LONG_NAME));
      assert(Deno.lstatSync(`${root}/empty-dir`).isDirectory);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("debian image: one gzip layer of a debootstrap minbase bookworm tree", async () => {
  await withRegistry({}, async (reg) => {
    const t = performance.now();
    const p = await pushImage(reg, "library/debian", "debian", { tag: "bookworm" });
    console.log(`debian build (when not cached) + push: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const m = await rawManifest(reg, "library/debian:bookworm");
    assertEquals(m.layers.length, 1);
    assertEquals(m.layers[0].mediaType, "application/vnd.oci.image.layer.v1.tar+gzip");
    const config = await skopeoInspect(`docker://${p.ref}`, ["--config"]);
    assertEquals(config.config.Cmd, ["bash"]);
    // The layer through curl, listed with GNU tar.
    const list = await run("sh", [
      "-c",
      `curl -sf "$1" | tar -tzf - > "$2.list" && wc -l < "$2.list" && grep -c -x -e 'usr/bin/apt-get' -e 'etc/debian_version' "$2.list"; rm -f "$2.list"`,
      "sh",
      `http://${reg.url}/v2/library/debian/blobs/${m.layers[0].digest}`,
      `${reg.dir}/debian`,
    ]);
    const [count, found] = list.stdout.trim().split("\n").map(Number);
    assert(count! > 5000, `a full rootfs (${count} entries)`);
    assertEquals(found, 2, "usr/bin/apt-get and etc/debian_version");
    console.log(`debian layer: ${(m.layers[0].size / 1e6).toFixed(1)} MB compressed, ${count} entries`);
  });
});

Deno.test("docker-archive and OCI layout sources", async () => {
  const archive = await dockerArchive("busybox");
  const a = await skopeoInspect(`docker-archive:${archive.path}`);
  assertEquals(a.Layers.length, 1);
  assertEquals(a.Architecture, "amd64");
  const list = await run("tar", ["-tf", archive.path]);
  assert(list.stdout.split("\n").includes("manifest.json"), "docker save layout");
  const manifest = JSON.parse((await run("tar", ["-xOf", archive.path, "manifest.json"])).stdout);
  assertEquals(manifest[0].RepoTags, [archive.repoTag]);

  const layout = await ociLayout("layers");
  const o = await skopeoInspect(layout.ref);
  assertEquals(o.Layers.length, 3);
  const multi = await ociLayout("multiplatform");
  const raw = await skopeoInspect(multi.ref, ["--raw"]);
  assertEquals(raw.manifests.length, 3);

  const dir = await Deno.makeTempDir({ prefix: "gcr-ref-unpack-" });
  try {
    const root = await referenceUnpack("busybox", `${dir}/bundle`);
    assertEquals(await Deno.readLink(`${root}/bin/sh`), "/bin/busybox");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- malicious layers

Deno.test("malicious layers: plain tars and images", async () => {
  const cases = await maliciousLayers();
  assertEquals(cases.map((c) => c.name), [...MALICIOUS_CASES]);
  const expected: Record<string, [string, string, string][][]> = {
    "dotdot": [[["0", "../gcr-escape-dotdot", ""], ["0", "ok", ""]]],
    "absolute": [[["0", "/tmp/gcr-escape-absolute", ""]]],
    "symlink-dir": [[["2", "evil", "/tmp"], ["0", "evil/gcr-escape-symlink", ""]]],
    "symlink-chain": [[["2", "a", "b"], ["2", "b", "../../../../../../../../tmp"], ["0", "a/gcr-escape-chain", ""]]],
    "symlink-layer": [[["2", "evil", "/tmp"]], [["0", "evil/gcr-escape-layer", ""]]],
    "hardlink-out": [[["1", "pw-abs", "/etc/passwd"], ["1", "pw-rel", "../../../../../../../../etc/passwd"]]],
    "whiteout-dotdot": [[["5", "sub", ""], ["0", "sub/.wh...", ""], ["0", ".wh...", ""]]],
    "whiteout-outside": [[["0", "../.wh.gcr-escape-victim", ""]]],
  };
  // The tar files say exactly what they claim (read raw: tarfile keeps names as stored).
  for (const c of cases) {
    const got = [];
    for (const t of c.tars) got.push(await tarList(await Deno.readFile(t)));
    assertEquals(got, expected[c.name], c.name);
  }
  // GNU tar sees the same hostile names.
  const gnu = await run("tar", ["-tvf", cases.find((c) => c.name === "dotdot")!.tars[0]!]);
  assertMatch(gnu.stdout, /\.\.\/gcr-escape-dotdot/);

  await withRegistry({}, async (reg) => {
    for (const c of cases) {
      const p = await pushImage(reg, "malicious", c.kind, { tag: c.name });
      const m = await rawManifest(reg, `malicious:${c.name}`);
      assertEquals(m.layers.length, c.tars.length, c.name);
      for (const [i, l] of m.layers.entries()) {
        const b = await curl(`http://${reg.url}/v2/malicious/blobs/${l.digest}`);
        assertEquals(await tarList(b.body), expected[c.name]![i], `${c.name} layer ${i}`);
      }
      assertEquals((await skopeoInspect(`docker://${p.ref}`)).Digest, p.digest);
    }
  });
});

// ---------------------------------------------------------------- fault injection

async function busyboxLayer(reg: Registry): Promise<{ digest: string; size: number; path: string }> {
  await pushImage(reg, "library/busybox", "busybox");
  const m = await rawManifest(reg, "library/busybox:latest");
  return {
    digest: m.layers[0].digest,
    size: m.layers[0].size,
    path: `/v2/library/busybox/blobs/${m.layers[0].digest}`,
  };
}

Deno.test("fault cut-blob: the connection closes mid-blob; a Range request fetches the rest", async () => {
  await withRegistry({}, async (reg) => {
    const layer = await busyboxLayer(reg);
    const proxy = await startFaultyProxy(reg, { mode: "cut-blob", bytes: 100_000, digest: layer.digest });
    try {
      const cut = await curl(`http://${proxy.url}${layer.path}`);
      assertEquals(cut.exit, 18, "curl: transfer closed with outstanding read data remaining");
      assertEquals(cut.headers["content-length"], String(layer.size), "the full length was promised");
      assertEquals(cut.body.length, 100_000);
      const rest = await curl(`http://${proxy.url}${layer.path}`, ["-r", "100000-"]);
      assertEquals(rest.status, 206);
      assertEquals(rest.headers["content-range"], `bytes 100000-${layer.size - 1}/${layer.size}`);
      const whole = new Uint8Array(layer.size);
      whole.set(cut.body);
      whole.set(rest.body, cut.body.length);
      assertEquals(await sha256(whole), layer.digest, "resumed blob is intact");
      const again = await curl(`http://${proxy.url}${layer.path}`);
      assertEquals([again.exit, again.body.length], [0, layer.size], "only the first GET is cut");
      assertEquals(proxy.stats.cuts, 1);
      // Manifests and other traffic pass through unharmed: skopeo inspects through the proxy.
      const info = await skopeoInspect(`docker://${proxy.url}/library/busybox:latest`);
      assertEquals(info.Layers, [layer.digest]);
    } finally {
      await proxy.stop();
    }
  });
});

Deno.test("fault corrupt-blob: same length, one byte flipped, digest mismatch", async () => {
  await withRegistry({}, async (reg) => {
    const layer = await busyboxLayer(reg);
    const proxy = await startFaultyProxy(reg, { mode: "corrupt-blob" });
    try {
      const r = await curl(`http://${proxy.url}${layer.path}`);
      assertEquals([r.exit, r.status, r.body.length], [0, 200, layer.size]);
      assert((await sha256(r.body)) !== layer.digest, "digest must not match");
      const good = await curl(`http://${reg.url}${layer.path}`);
      const diff = r.body.reduce((n, b, i) => n + (b !== good.body[i] ? 1 : 0), 0);
      assertEquals(diff, 1, "exactly one byte differs");
      assertEquals(proxy.stats.corrupted, 1);
      const copy = await run("skopeo", [
        "copy",
        "--src-tls-verify=false",
        `docker://${proxy.url}/library/busybox:latest`,
        `oci:${reg.dir}/copy:x`,
      ], { allowFail: true });
      assert(copy.code !== 0, "skopeo refuses the corrupted blob");
      assertMatch(copy.stderr, /digest|gzip|checksum|invalid/i);
    } finally {
      await proxy.stop();
    }
  });
});

Deno.test("fault rate-limit: 429 with Retry-After once per path", async () => {
  await withRegistry({}, async (reg) => {
    await busyboxLayer(reg);
    const proxy = await startFaultyProxy(reg, { mode: "rate-limit", retryAfter: 1 });
    try {
      const url = `http://${proxy.url}/v2/library/busybox/manifests/latest`;
      const first = await curl(url, ["-H", `Accept: ${ACCEPT_ALL}`]);
      assertEquals(first.status, 429);
      assertEquals(first.headers["retry-after"], "1");
      assertEquals(JSON.parse(first.text).errors[0].code, "TOOMANYREQUESTS");
      const second = await curl(url, ["-H", `Accept: ${ACCEPT_ALL}`]);
      assertEquals(second.status, 200);
      // curl's own retry honours Retry-After on a path seen for the first time.
      const t = performance.now();
      const retried = await curl(`http://${proxy.url}/v2/library/busybox/tags/list`, ["--retry", "2"]);
      const waited = (performance.now() - t) / 1000;
      assertEquals(retried.status, 200);
      assert(waited >= 0.9, `curl waited ${waited.toFixed(2)} s`);
      assertEquals(proxy.stats.rateLimited, 2);
      const tagReqs = proxy.stats.requests.filter((r) => r.path.endsWith("/tags/list"));
      assertEquals(tagReqs.map((r) => r.status), [429, 200]);
    } finally {
      await proxy.stop();
    }
  });
});

Deno.test("fault server-error: 503 for the first requests to a path, then the real answer", async () => {
  await withRegistry({}, async (reg) => {
    const layer = await busyboxLayer(reg);
    const proxy = await startFaultyProxy(reg, { mode: "server-error", times: 2, paths: /\/blobs\// });
    try {
      const url = `http://${proxy.url}${layer.path}`;
      assertEquals((await curl(url)).status, 503);
      assertEquals((await curl(url)).status, 503);
      const ok = await curl(url);
      assertEquals([ok.status, await sha256(ok.body)], [200, layer.digest]);
      assertEquals((await curl(`http://${proxy.url}/v2/`)).status, 200, "other paths untouched");
      // curl --retry treats 503 as transient and gets through (another blob: the config).
      const m = await rawManifest(reg, "library/busybox:latest");
      const retried = await curl(`http://${proxy.url}/v2/library/busybox/blobs/${m.config.digest}`, [
        "--retry",
        "3",
        "--retry-delay",
        "1",
      ]);
      assertEquals(retried.status, 200);
      assertEquals(proxy.stats.requests.filter((r) => r.path.endsWith(m.config.digest)).map((r) => r.status), [
        503,
        503,
        200,
      ]);
      assertEquals(proxy.stats.serverErrors, 4);
    } finally {
      await proxy.stop();
    }
  });
});

Deno.test("fault slow-blob: blob GETs held back, concurrency counted", async () => {
  await withRegistry({}, async (reg) => {
    const layer = await busyboxLayer(reg);
    const m = await rawManifest(reg, "library/busybox:latest");
    const proxy = await startFaultyProxy(reg, { mode: "slow-blob", delayMs: 400 });
    try {
      const t = performance.now();
      const [a, b] = await Promise.all([
        curl(`http://${proxy.url}${layer.path}`),
        curl(`http://${proxy.url}/v2/library/busybox/blobs/${m.config.digest}`),
      ]);
      const took = (performance.now() - t) / 1000;
      assertEquals([a.status, b.status], [200, 200]);
      assertEquals(await sha256(a.body), layer.digest);
      assert(took >= 0.4, `two parallel GETs took ${took.toFixed(2)} s`);
      assertEquals([proxy.stats.maxBlobsInFlight, proxy.stats.blobsInFlight], [2, 0]);
    } finally {
      await proxy.stop();
    }
  });
});

Deno.test("fault redirect-blob: 307 to a second host that records Authorization", async () => {
  await withRegistry({ auth: "basic" }, async (reg) => {
    const layer = await busyboxLayer(reg);
    const proxy = await startFaultyProxy(reg, { mode: "redirect-blob" });
    try {
      assertMatch(proxy.secondHostUrl ?? "", /^127\.0\.0\.2:\d+$/);
      const creds = `${reg.username}:${reg.password}`;
      const first = await curl(`http://${proxy.url}${layer.path}`, ["-u", creds]);
      assertEquals(first.status, 307);
      assertEquals(first.headers["location"], `http://${proxy.secondHostUrl}/blobs/${layer.digest}`);
      // curl drops credentials when a redirect changes host...
      const followed = await curl(`http://${proxy.url}${layer.path}`, ["-L", "-u", creds]);
      assertEquals(followed.status, 200);
      assertEquals(await sha256(followed.body), layer.digest);
      assertEquals(proxy.secondHostAuthorizations(), 0);
      // ...unless told to trust the new host, which the counter sees.
      await curl(`http://${proxy.url}${layer.path}`, ["--location-trusted", "-u", creds]);
      assertEquals(proxy.secondHostAuthorizations(), 1);
      const ranged = await curl(`http://${proxy.secondHostUrl}/blobs/${layer.digest}`, ["-r", "10-19"]);
      assertEquals([ranged.status, ranged.body.length], [206, 10]);
      // An independent client pulls through the redirect.
      const dir = `${reg.dir}/copy`;
      await run("skopeo", [
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        `docker://${proxy.url}/library/busybox:latest`,
        `oci:${dir}:x`,
      ]);
      assert(proxy.stats.redirects >= 3);
      // The proxy saw credentials; the second host saw no Authorization from skopeo either.
      assert(proxy.stats.requests.some((r) => r.authorization?.startsWith("Basic ")));
      assertEquals(proxy.secondHostAuthorizations(), 1, "only curl --location-trusted sent one");
    } finally {
      await proxy.stop();
    }
  });
});

Deno.test("token registry behind the proxy: the auth flow passes through", async () => {
  await withRegistry({ auth: "token" }, async (reg) => {
    await pushImage(reg, "library/busybox", "busybox");
    const proxy = await startFaultyProxy(reg, { mode: "none" });
    try {
      const info = await skopeoInspect(`docker://${proxy.url}/library/busybox:latest`, ["--no-creds"]);
      assertEquals(info.Architecture, "amd64");
      assert(proxy.stats.requests.some((r) => r.status === 401));
      assert(proxy.stats.requests.some((r) => r.authorization?.startsWith("Bearer ")));
    } finally {
      await proxy.stop();
    }
  });
});
