/**
 * The registry client of `gcr pull`: unit tests of what can be checked
 * without a server (challenge parsing, tokens, Docker config, manifests,
 * platforms, progress), then pulls from Debian's real `docker-registry`
 * (docker/distribution 2.8) with images pushed by skopeo from umoci layouts,
 * through the shared fixtures in tests/registry/fixtures.ts (registry, token
 * service, fault-injecting proxy). Only schema 1 and a lying manifest server
 * are faked here, with a few lines of Deno.serve: distribution 2.8 refuses
 * schema 1 pushes, and an honest registry never lies.
 */
import {
  assert,
  assertDeepEquals,
  assertMatch,
  assertNotStrictEquals,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "../helpers.ts";
import { join } from "node:path";
import {
  Authenticator,
  credentialsFromDockerConfig,
  type DockerConfig,
  parseTokenResponse,
  parseWwwAuthenticate,
} from "../../image/auth.ts";
import { BlobCache, BlobVerificationError, digestOf } from "../../image/blob_cache.ts";
import {
  type Descriptor,
  type ImageIndex,
  isAttestation,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPE,
  normalizePlatform,
  parseManifest,
  parsePlatform,
  type Platform,
  selectManifest,
} from "../../image/manifest.ts";
import { humanSize, PlainProgress, type PullProgress, TerminalProgress } from "../../image/progress.ts";
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, pullImage, RegistryClient } from "../../image/registry.ts";
import { missingPrograms, named } from "../fixtures.ts";
import { type FaultyProxy, pushImage, type Registry, startFaultyProxy, startRegistry } from "../registry/fixtures.ts";
import { sleep } from "../../host/time.ts";

const te = new TextEncoder();
const json = (value: unknown) => te.encode(JSON.stringify(value));
const D = (c: string) => "sha256:" + c.repeat(64);

// ---------------------------------------------------------------- auth, without a server

Deno.test("WWW-Authenticate: realm, service and scope, quoted commas and escapes", () => {
  const [bearer, ...rest] = parseWwwAuthenticate(
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",' +
      'scope="repository:library/ubuntu:pull,push",error="insufficient_scope"',
  );
  assertStrictEquals(rest.length, 0);
  assertDeepEquals(bearer, {
    scheme: "bearer",
    params: {
      realm: "https://auth.docker.io/token",
      service: "registry.docker.io",
      scope: "repository:library/ubuntu:pull,push",
      error: "insufficient_scope",
    },
  });
  // Case-insensitive scheme and names, spaces around '=' and ',', a token value, an escaped quote.
  assertDeepEquals(parseWwwAuthenticate('BEARER Realm = "http://x/token" , Service=reg ,scope="a \\"b\\" c"'), [
    { scheme: "bearer", params: { realm: "http://x/token", service: "reg", scope: 'a "b" c' } },
  ]);
  // Several challenges in one header, and a token68 one that is skipped over.
  assertDeepEquals(parseWwwAuthenticate('Negotiate abc==, Basic realm="Registry Realm", Bearer realm="r"'), [
    { scheme: "negotiate", params: {} },
    { scheme: "basic", params: { realm: "Registry Realm" } },
    { scheme: "bearer", params: { realm: "r" } },
  ]);
  assertDeepEquals(parseWwwAuthenticate(""), []);
  assertDeepEquals(parseWwwAuthenticate('Bearer realm="unterminated'), [
    { scheme: "bearer", params: { realm: "unterminated" } },
  ]);
});

Deno.test("token responses: expires_in, issued_at, the 60 s default", () => {
  const now = Date.parse("2024-01-01T00:10:00Z");
  assertDeepEquals(parseTokenResponse({ token: "t" }, now), { token: "t", expiresAt: now + 60_000 });
  assertDeepEquals(parseTokenResponse({ access_token: "a", expires_in: 300 }, now), {
    token: "a",
    expiresAt: now + 300_000,
  });
  // issued_at counts when it is in the past; a future one (clock skew) is ignored.
  assertStrictEquals(
    parseTokenResponse({ token: "t", expires_in: 300, issued_at: "2024-01-01T00:09:00Z" }, now).expiresAt,
    now - 60_000 + 300_000,
  );
  assertStrictEquals(
    parseTokenResponse({ token: "t", expires_in: 300, issued_at: "2024-01-01T01:00:00Z" }, now).expiresAt,
    now + 300_000,
  );
  // Less than 60 s is read as 60 s (the token spec's minimum).
  assertStrictEquals(parseTokenResponse({ token: "t", expires_in: 5 }, now).expiresAt, now + 60_000);
  assertThrows(() => parseTokenResponse({ expires_in: 5 }, now), /no token/);
  assertThrows(() => parseTokenResponse("x", now), /not a JSON object/);
});

Deno.test("credentials from ~/.docker/config.json auths", () => {
  const b64 = (s: string) => btoa(s);
  const config: DockerConfig = {
    path: "/home/u/.docker/config.json",
    auths: {
      "https://index.docker.io/v1/": { auth: b64("hub-user:hub:pass") },
      "registry.example.com": { auth: b64("ex:secret") },
      "http://localhost:5000/v2/": { username: "lu", password: "lp" },
      "https://ghcr.io": { auth: b64("gh:tok"), identitytoken: "refresh-me" },
      "broken.example.com": { auth: "%%%" },
    },
  };
  assertDeepEquals(credentialsFromDockerConfig(config, "docker.io"), { username: "hub-user", password: "hub:pass" });
  assertDeepEquals(credentialsFromDockerConfig(config, "registry.example.com"), { username: "ex", password: "secret" });
  assertDeepEquals(credentialsFromDockerConfig(config, "localhost:5000"), { username: "lu", password: "lp" });
  assertDeepEquals(credentialsFromDockerConfig(config, "ghcr.io"), { username: "gh", identityToken: "refresh-me" });
  assertStrictEquals(credentialsFromDockerConfig(config, "quay.io"), undefined);
  assertStrictEquals(credentialsFromDockerConfig(config, "localhost:5001"), undefined);
  assertThrows(() => credentialsFromDockerConfig(config, "broken.example.com"), /"auth" is not base64/);
});

// ---------------------------------------------------------------- manifests and platforms

const CONFIG = { mediaType: MEDIA_TYPE.ociConfig, digest: D("c"), size: 10 };
const LAYER = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: D("1"), size: 20 };

Deno.test("manifests: the four types, and the type from header or shape", () => {
  const manifest = { schemaVersion: 2, config: CONFIG, layers: [LAYER] };
  const parsed = parseManifest(json({ ...manifest, mediaType: MEDIA_TYPE.ociManifest }));
  assertStrictEquals(parsed.kind, "manifest");
  assertStrictEquals(parseManifest(json(manifest), MEDIA_TYPE.dockerManifest).mediaType, MEDIA_TYPE.dockerManifest);
  assertStrictEquals(parseManifest(json(manifest), "application/json").mediaType, MEDIA_TYPE.ociManifest);
  const docker = parseManifest(
    json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.dockerManifest,
      config: { ...CONFIG, mediaType: MEDIA_TYPE.dockerConfig },
      layers: [{ ...LAYER, mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip" }],
    }),
  );
  assertStrictEquals(
    docker.kind === "manifest" && docker.layers[0]!.mediaType,
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
  );
  const list = parseManifest(
    json({ schemaVersion: 2, mediaType: MEDIA_TYPE.dockerManifestList, manifests: [] }),
  );
  assertStrictEquals(list.kind, "index");
  assertStrictEquals(parseManifest(json({ schemaVersion: 2, manifests: [] })).mediaType, MEDIA_TYPE.ociIndex);
  assertStrictEquals(
    MANIFEST_ACCEPT,
    [MEDIA_TYPE.ociIndex, MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifestList, MEDIA_TYPE.dockerManifest].join(", "),
  );
});

Deno.test("manifests: schema 1 and the unsupported are refused clearly", () => {
  const schema1 = json({ schemaVersion: 1, name: "x", tag: "t", fsLayers: [], history: [], signatures: [] });
  for (const type of [MEDIA_TYPE.dockerSchema1, MEDIA_TYPE.dockerSchema1Signed, "application/json", undefined]) {
    assertThrows(() => parseManifest(schema1, type), /schema 1, which gcr does not support/);
  }
  assertThrows(() => parseManifest(te.encode("not json")), /invalid manifest/);
  assertThrows(
    () => parseManifest(json({ schemaVersion: 2, mediaType: "application/vnd.oci.artifact.manifest.v1+json" })),
    /unsupported manifest media type application\/vnd.oci.artifact.manifest.v1\+json/,
  );
  assertThrows(
    () =>
      parseManifest(
        json({
          schemaVersion: 2,
          config: { ...CONFIG, mediaType: "application/vnd.cncf.helm.config.v1+json" },
          layers: [],
        }),
      ),
    /not a container image: its config has media type application\/vnd.cncf.helm.config.v1\+json/,
  );
  assertThrows(
    () => parseManifest(json({ schemaVersion: 2, config: CONFIG, layers: [{ ...LAYER, digest: "sha256:../../x" }] })),
    /invalid layer 1: invalid digest/,
  );
  assertThrows(
    () => parseManifest(json({ schemaVersion: 2, config: CONFIG, layers: [{ ...LAYER, size: -1 }] })),
    /invalid layer 1: size is -1/,
  );
  assertThrows(
    () => parseManifest(json({ schemaVersion: 2, config: CONFIG, layers: [{ ...LAYER, mediaType: "text/plain" }] })),
    /unsupported layer 1 .*: media type text\/plain/,
  );
});

function entry(digestChar: string, platform?: Platform, annotations?: Record<string, string>): Descriptor {
  return {
    mediaType: MEDIA_TYPE.ociManifest,
    digest: D(digestChar),
    size: 100,
    ...(platform ? { platform } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

Deno.test("platforms: parse, normalise, choose from an index", () => {
  assertDeepEquals(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  assertDeepEquals(parsePlatform("linux/arm64"), { os: "linux", architecture: "arm64", variant: "v8" });
  assertDeepEquals(parsePlatform("linux/arm/v6"), { os: "linux", architecture: "arm", variant: "v6" });
  assertDeepEquals(parsePlatform("arm64"), { os: "linux", architecture: "arm64", variant: "v8" });
  assertThrows(() => parsePlatform("linux/"), /expected os\/arch\[\/variant\]/);
  assertThrows(() => parsePlatform("a/b/c/d"), /expected os\/arch\[\/variant\]/);
  assertDeepEquals(normalizePlatform({ os: "Linux", architecture: "x86_64" }), { os: "linux", architecture: "amd64" });
  assertDeepEquals(normalizePlatform({ os: "linux", architecture: "aarch64" }), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  assertDeepEquals(normalizePlatform({ os: "linux", architecture: "armhf" }), {
    os: "linux",
    architecture: "arm",
    variant: "v7",
  });

  const index: ImageIndex = {
    kind: "index",
    mediaType: MEDIA_TYPE.ociIndex,
    manifests: [
      // Attestations first, one even claiming linux/amd64: never chosen.
      entry("0", { os: "linux", architecture: "amd64" }, { "vnd.docker.reference.type": "attestation-manifest" }),
      entry("9", { os: "unknown", architecture: "unknown" }),
      entry("a", { os: "linux", architecture: "amd64" }),
      entry("b", { os: "linux", architecture: "arm64", variant: "v8" }),
      entry("c", { os: "linux", architecture: "arm", variant: "v6" }),
      entry("d", { os: "linux", architecture: "arm", variant: "v7" }),
      entry("e", { os: "windows", architecture: "amd64", "os.version": "10.0.17763.1" }),
    ],
  };
  assert(isAttestation(index.manifests[0]!) && isAttestation(index.manifests[1]!));
  const pick = (spec: string) => selectManifest(index, parsePlatform(spec)).digest;
  assertStrictEquals(pick("linux/amd64"), D("a"));
  assertStrictEquals(pick("linux/arm64"), D("b"));
  assertStrictEquals(pick("linux/arm64/v8"), D("b"));
  assertStrictEquals(pick("linux/aarch64"), D("b"));
  assertStrictEquals(pick("linux/arm/v7"), D("d"));
  assertStrictEquals(pick("linux/arm/v6"), D("c"));
  assertStrictEquals(pick("linux/arm/v8"), D("d"), "the newest older arm variant");
  assertStrictEquals(pick("windows/amd64"), D("e"));
  assertThrows(() => pick("linux/arm/v5"), /no image for linux\/arm\/v5/);
  assertThrows(
    () => pick("linux/s390x"),
    /no image for linux\/s390x in the index \(it has: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v6, linux\/arm\/v7, windows\/amd64\)/,
  );
  assertThrows(() => pick("unknown/unknown"), /no image for unknown\/unknown/);

  // An arm64 entry without variant is v8; an amd64 v3 host runs v1 and v2 images.
  const plain: ImageIndex = {
    kind: "index",
    mediaType: MEDIA_TYPE.ociIndex,
    manifests: [
      entry("1", { os: "linux", architecture: "arm64" }),
      entry("2", { os: "linux", architecture: "amd64" }),
      entry("3", { os: "linux", architecture: "amd64", variant: "v2" }),
    ],
  };
  assertStrictEquals(selectManifest(plain, parsePlatform("linux/arm64/v8")).digest, D("1"));
  assertStrictEquals(selectManifest(plain, parsePlatform("linux/amd64/v3")).digest, D("3"));
  assertStrictEquals(selectManifest(plain, parsePlatform("linux/amd64")).digest, D("2"));
});

// ---------------------------------------------------------------- retries and progress

Deno.test("Retry-After: seconds or an HTTP date; back-off doubles and is capped", () => {
  const now = Date.parse("2024-01-01T00:00:00Z");
  assertStrictEquals(parseRetryAfter("2", now), 2000);
  assertStrictEquals(parseRetryAfter(" 0 ", now), 0);
  assertStrictEquals(parseRetryAfter("Mon, 01 Jan 2024 00:00:03 GMT", now), 3000);
  assertStrictEquals(parseRetryAfter("Sun, 31 Dec 2023 23:59:00 GMT", now), 0);
  assertStrictEquals(parseRetryAfter("soon", now), undefined);
  assertStrictEquals(parseRetryAfter(null, now), undefined);
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
  for (let i = 0; i < 20; i++) {
    const d0 = backoffDelay(0, policy);
    const d2 = backoffDelay(2, policy);
    assert(d0 >= 75 && d0 <= 125, `${d0}`);
    assert(d2 >= 300 && d2 <= 500, `${d2}`);
    assertStrictEquals(backoffDelay(10, policy), 1000);
  }
});

Deno.test("progress: one line per layer redrawn in place on a terminal", () => {
  let out = "";
  let now = 0;
  const progress = new TerminalProgress({ write: (s) => (out += s), now: () => now, columns: () => 80 });
  progress.note("latest: Pulling from library/ubuntu");
  progress.update("aaaaaaaaaaaa", "Waiting", 0, 45_600_000);
  progress.update("bbbbbbbbbbbb", "Waiting", 0, 1_000);
  assertStrictEquals(
    out,
    "latest: Pulling from library/ubuntu\naaaaaaaaaaaa: Waiting\nbbbbbbbbbbbb: Waiting\n",
  );
  out = "";
  now = 1000;
  progress.update("aaaaaaaaaaaa", "Downloading", 0, 45_600_000);
  // Two lines up (to aaaa…), clear it, write, two lines down.
  assertStrictEquals(out, "\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading  0B/45.6MB\r\x1b[2B");
  out = "";
  now = 1050;
  progress.update("aaaaaaaaaaaa", "Downloading", 100_000, 45_600_000);
  assertStrictEquals(out, "", "bytes alone redraw at most every 100 ms");
  now = 3400;
  progress.update("aaaaaaaaaaaa", "Downloading", 12_300_000, 45_600_000);
  assertStrictEquals(out, "\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading  12.3MB/45.6MB  5.19MB/s\r\x1b[2B");
  out = "";
  progress.update("bbbbbbbbbbbb", "Download complete", 1000, 1000);
  assertStrictEquals(out, "\x1b[1A\r\x1b[2Kbbbbbbbbbbbb: Download complete\r\x1b[1B");
  assertStrictEquals(humanSize(999), "999B");
  assertStrictEquals(humanSize(1234), "1.23kB");
  assertStrictEquals(humanSize(123_456_789), "123MB");
});

Deno.test("progress: plain log lines, start and done per layer", () => {
  const lines: string[] = [];
  let now = 0;
  const progress = new PlainProgress({ write: (s) => lines.push(s.replace(/^\S+ \S+ /, "")), now: () => now });
  progress.note("t: Pulling from x");
  progress.update("aaaaaaaaaaaa", "Waiting", 0, 2_000_000);
  progress.update("aaaaaaaaaaaa", "Downloading", 0, 2_000_000);
  progress.update("aaaaaaaaaaaa", "Downloading", 1_000_000, 2_000_000);
  progress.update("aaaaaaaaaaaa", "Retrying in 1s: connection reset", 1_000_000, 2_000_000);
  progress.update("aaaaaaaaaaaa", "Downloading", 1_000_000, 2_000_000);
  now = 2000;
  progress.update("aaaaaaaaaaaa", "Verifying Checksum", 2_000_000, 2_000_000);
  progress.update("aaaaaaaaaaaa", "Download complete", 2_000_000, 2_000_000);
  progress.update("bbbbbbbbbbbb", "Already exists");
  assertDeepEquals(lines, [
    "t: Pulling from x\n",
    "aaaaaaaaaaaa: downloading 2MB\n",
    "aaaaaaaaaaaa: retrying in 1s: connection reset\n",
    "aaaaaaaaaaaa: downloading 2MB (resuming at 1MB)\n",
    "aaaaaaaaaaaa: done 2MB in 2.0s, 1MB/s\n",
    "bbbbbbbbbbbb: already exists\n",
  ]);
});

Deno.test("the scheme: https, plain http only on loopback or with --insecure", () => {
  assertStrictEquals(new RegistryClient("docker.io").baseUrl.href, "https://registry-1.docker.io/");
  assertStrictEquals(
    new RegistryClient("registry.example.com:5000").baseUrl.href,
    "https://registry.example.com:5000/",
  );
  assertStrictEquals(new RegistryClient("registry.example.com", { insecure: true }).baseUrl.protocol, "http:");
  for (const domain of ["localhost:5000", "127.0.0.1:5000", "[::1]:5000"]) {
    assertStrictEquals(new RegistryClient(domain).baseUrl.protocol, "http:", domain);
  }
});

// ---------------------------------------------------------------- against a real registry

/** Records events; `state` is each layer's last status. */
class RecordingProgress implements PullProgress {
  readonly events: string[] = [];
  readonly notes: string[] = [];
  readonly state = new Map<string, string>();
  note(message: string): void {
    this.notes.push(message);
  }
  update(id: string, status: string): void {
    if (this.state.get(id) !== status) this.events.push(`${id}: ${status}`);
    this.state.set(id, status);
  }
  finish(): void {}
}

async function listFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch {
    // missing
  }
  return names.sort();
}

const blobGets = (proxy: FaultyProxy) =>
  proxy.stats.requests.filter((r) => r.method === "GET" && r.path.includes("/blobs/"));
const manifestGets = (proxy: FaultyProxy) =>
  proxy.stats.requests.filter((r) => r.method === "GET" && r.path.includes("/manifests/"));

/**
 * A proxy that holds every blob response back for `delayMs` and counts how
 * many blob requests are in flight at once. Local because the shared
 * fixture's proxy (tests/registry/fixtures.ts) has no such mode yet.
 */
function startSlowProxy(upstream: string, delayMs: number) {
  let inFlight = 0;
  let maxInFlight = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const blob = url.pathname.includes("/blobs/");
    if (blob) maxInFlight = Math.max(maxInFlight, ++inFlight);
    try {
      if (blob) await sleep(delayMs);
      const headers = new Headers(req.headers);
      headers.delete("host");
      headers.set("accept-encoding", "identity");
      const res = await fetch(`http://${upstream}${url.pathname}${url.search}`, { headers, redirect: "manual" });
      const body = await res.arrayBuffer(); // whole, so that "in flight" lasts until the answer is complete
      const out = new Headers(res.headers);
      for (const h of ["connection", "transfer-encoding", "content-encoding", "content-length"]) out.delete(h);
      return new Response(req.method === "HEAD" ? null : body, { status: res.status, headers: out });
    } finally {
      if (blob) inFlight--;
    }
  });
  return {
    url: `127.0.0.1:${server.addr.port}`,
    maxInFlight: () => maxInFlight,
    stop: () => server.shutdown(),
  };
}

const FAST_RETRY = { baseDelayMs: 20, maxDelayMs: 2_000 };

Deno.test({
  ...named(
    "pulls from a real docker-registry",
    missingPrograms("docker-registry", "skopeo", "umoci", "htpasswd", "openssl"),
  ),
  sanitizeResources: false, // fetch's connection pool outlives single steps
  sanitizeOps: false,
  async fn(t) {
    const cleanup: (() => Promise<void>)[] = [];
    const tempDir = async () => {
      const dir = await Deno.makeTempDir({ prefix: "gcr-pull-test-" });
      cleanup.push(() => Deno.remove(dir, { recursive: true }));
      return dir;
    };
    const proxy = async (upstream: Registry, fault: Parameters<typeof startFaultyProxy>[1]) => {
      const p = await startFaultyProxy(upstream, fault);
      cleanup.push(() => p.stop());
      return p;
    };
    try {
      const registry = await startRegistry();
      cleanup.push(() => registry.stop());
      const busybox = await pushImage(registry, "team/busybox", "busybox", { tag: "1.36" });
      const multi = await pushImage(registry, "multi", "multiplatform");
      const multiV2 = await pushImage(registry, "multi-v2s2", "multiplatform-v2s2");
      const layers = await pushImage(registry, "layers", "layers");
      const quiet = { dockerConfig: null, retry: FAST_RETRY } as const;

      await t.step("pull by tag: every blob verified into the cache, then nothing downloaded again", async () => {
        const counter = await proxy(registry, { mode: "none" });
        const cacheDir = await tempDir();
        const progress = new RecordingProgress();
        const ref = `${counter.url}/team/busybox:1.36`;
        const image = await pullImage(ref, { ...quiet, cacheDir, progress });
        assertStrictEquals(image.reference, ref);
        assertStrictEquals(image.digest, busybox.digest);
        assertStrictEquals(image.manifestDigest, busybox.digest);
        assertStrictEquals(image.manifest.mediaType, MEDIA_TYPE.ociManifest);
        assertStrictEquals(image.config.architecture, "amd64");
        assertDeepEquals(image.platform, { os: "linux", architecture: "amd64" });
        assertStrictEquals(image.layers.length, 1);
        for (const layer of [...image.layers, { digest: image.configDigest, path: image.configPath }]) {
          assertStrictEquals(digestOf(await Deno.readFile(layer.path)), layer.digest);
          assertStrictEquals(layer.path, join(cacheDir, "blobs", "sha256", layer.digest.slice(7)));
        }
        assertDeepEquals(await listFiles(join(cacheDir, "ingest")), []);
        assert(image.downloadedBytes > 0);
        assertStrictEquals(blobGets(counter).length, 2, "config and one layer");
        assertDeepEquals(progress.notes, [
          "1.36: Pulling from team/busybox",
          `Digest: ${busybox.digest}`,
          `Status: Downloaded newer image for ${ref}`,
        ]);
        const id = image.layers[0]!.digest.slice(7, 19);
        assertDeepEquals(progress.events, [
          `${id}: Waiting`,
          `${id}: Downloading`,
          `${id}: Verifying Checksum`,
          `${id}: Download complete`,
        ]);

        // Second pull: one manifest GET for the tag, no blob at all.
        const before = counter.stats.requests.length;
        const again = await pullImage(ref, { ...quiet, cacheDir, progress: new RecordingProgress() });
        const second = counter.stats.requests.slice(before);
        assertDeepEquals(second.map((r) => `${r.method} ${r.path}`), [`GET /v2/team/busybox/manifests/1.36`]);
        assertStrictEquals(again.downloadedBytes, 0);
        assertDeepEquals(again.layers, image.layers);

        // By digest, with the cache: no request at all.
        const n = counter.stats.requests.length;
        const pinned = await pullImage(`${counter.url}/team/busybox@${busybox.digest}`, { ...quiet, cacheDir });
        assertStrictEquals(counter.stats.requests.length, n);
        assertStrictEquals(pinned.manifestDigest, busybox.digest);
      });

      await t.step("pull by digest, and tag plus digest (the digest wins)", async () => {
        const cacheDir = await tempDir();
        const image = await pullImage(`${registry.url}/team/busybox@${busybox.digest}`, { ...quiet, cacheDir });
        assertStrictEquals(image.digest, busybox.digest);
        const both = await pullImage(`${registry.url}/team/busybox:no-such-tag@${busybox.digest}`, {
          ...quiet,
          cacheDir: await tempDir(),
        });
        assertStrictEquals(both.digest, busybox.digest);
        await assertRejects(
          pullImage(`${registry.url}/team/busybox@${D("0")}`, { ...quiet, cacheDir }),
          /127\.0\.0\.1:\d+\/team\/busybox@sha256:0{64} not found: 404 Not Found: manifest unknown/,
        );
        await assertRejects(
          pullImage(`${registry.url}/team/busybox:nope`, { ...quiet, cacheDir }),
          /team\/busybox:nope not found: 404 Not Found: manifest unknown \(MANIFEST_UNKNOWN\)/,
        );
      });

      await t.step("platform from a multi-arch OCI index and Docker manifest list", async () => {
        const cacheDir = await tempDir();
        const host = await pullImage(`${registry.url}/multi`, { ...quiet, cacheDir });
        assertStrictEquals(host.digest, multi.digest, "Digest: is the index's");
        assertStrictEquals(host.manifestDigest, busybox.digest, "amd64 is the busybox image");
        assertStrictEquals(host.config.architecture, "amd64");
        const arm = await pullImage(`${registry.url}/multi`, { ...quiet, cacheDir, platform: "linux/arm64" });
        assertStrictEquals(arm.config.architecture, "arm64");
        assertNotStrictEquals(arm.manifestDigest, busybox.digest);
        const armV8 = await pullImage(`${registry.url}/multi`, { ...quiet, cacheDir, platform: "linux/arm64/v8" });
        assertStrictEquals(armV8.manifestDigest, arm.manifestDigest);
        await assertRejects(
          pullImage(`${registry.url}/multi`, { ...quiet, cacheDir, platform: "linux/s390x" }),
          /no image for linux\/s390x in the index \(it has: linux\/amd64, linux\/arm64\)/,
        );
        // The attestation entry (unknown/unknown) is never a candidate.
        await assertRejects(
          pullImage(`${registry.url}/multi`, { ...quiet, cacheDir, platform: "unknown/unknown" }),
          /no image for unknown\/unknown/,
        );
        const list = await pullImage(`${registry.url}/multi-v2s2`, { ...quiet, cacheDir, platform: "linux/arm64" });
        assertStrictEquals(list.digest, multiV2.digest);
        assertStrictEquals(list.config.architecture, "arm64");
        assertStrictEquals(list.manifest.mediaType, MEDIA_TYPE.dockerManifest);
        // A single-platform image asked for with another platform is refused.
        await assertRejects(
          pullImage(`${registry.url}/team/busybox:1.36`, { ...quiet, cacheDir, platform: "linux/arm64" }),
          /team\/busybox:1\.36 is for linux\/amd64, not linux\/arm64\/v8/,
        );
      });

      await t.step("layers are downloaded in parallel, 3 at a time by default", async () => {
        const slow = await startSlowProxy(registry.url, 300);
        cleanup.push(slow.stop);
        const image = await pullImage(`${slow.url}/layers`, { ...quiet, cacheDir: await tempDir() });
        assertStrictEquals(image.digest, layers.digest);
        assertStrictEquals(image.layers.length, 3);
        assertStrictEquals(slow.maxInFlight(), 3, "three layer GETs at once");
        const serial = await startSlowProxy(registry.url, 100);
        cleanup.push(serial.stop);
        await pullImage(`${serial.url}/layers`, { ...quiet, cacheDir: await tempDir(), concurrency: 1 });
        assertStrictEquals(serial.maxInFlight(), 1);
      });

      await t.step("a corrupted blob is an error and never enters the cache", async () => {
        const layer = (await pullImage(`${registry.url}/team/busybox:1.36`, { ...quiet, cacheDir: await tempDir() }))
          .layers[0]!;
        const faulty = await proxy(registry, { mode: "corrupt-blob", digest: layer.digest });
        const cacheDir = await tempDir();
        await assertRejects(
          pullImage(`${faulty.url}/team/busybox:1.36`, { ...quiet, cacheDir }),
          (error: Error) => {
            assert(error instanceof BlobVerificationError, String(error));
            assertStrictEquals(
              error.message,
              `digest mismatch: expected ${layer.digest}, got ${error.message.slice(-71)}`,
            );
            return true;
          },
        );
        assertStrictEquals(faulty.stats.corrupted, 1, "not retried: the same source would send the same bytes");
        const cached = await listFiles(join(cacheDir, "blobs", "sha256"));
        assertStrictEquals(cached.length, 2, "the manifest and the config, not the layer");
        assert(!cached.includes(layer.digest.slice(7)));
        assertDeepEquals(await listFiles(join(cacheDir, "ingest")), [], "no partial file either");
      });

      await t.step("a cut connection is resumed with Range, hashing on from the partial file", async () => {
        const faulty = await proxy(registry, { mode: "cut-blob", digest: undefined });
        const cacheDir = await tempDir();
        const progress = new RecordingProgress();
        const image = await pullImage(`${faulty.url}/team/busybox:1.36`, { ...quiet, cacheDir, progress });
        const layer = image.layers[0]!;
        assertStrictEquals(digestOf(await Deno.readFile(layer.path)), layer.digest);
        const gets = blobGets(faulty).filter((r) => r.path.endsWith(layer.digest));
        assertStrictEquals(faulty.stats.cuts, 2, "config and layer were both cut once");
        assertStrictEquals(gets.length, 2);
        assertStrictEquals(gets[0]!.range, null);
        assertStrictEquals(gets[1]!.range, `bytes=${Math.floor(layer.size / 2)}-`);
        assert(progress.events.some((e) => /: Retrying in \d+s: /.test(e)), progress.events.join("\n"));
      });

      await t.step("a partial file left by a failed pull is resumed by the next pull", async () => {
        const faulty = await proxy(registry, { mode: "cut-blob" });
        const cacheDir = await tempDir();
        const ref = `${faulty.url}/team/busybox:1.36`;
        await assertRejects(
          pullImage(ref, { ...quiet, cacheDir, retry: { ...FAST_RETRY, attempts: 1 } }),
          /cannot download sha256:[a-f0-9]{64}: .* \(gave up after 1 attempts\)/,
        );
        const partial = await listFiles(join(cacheDir, "ingest"));
        assertStrictEquals(partial.length, 1, "the cut config's partial file stays");
        const image = await pullImage(ref, { ...quiet, cacheDir });
        const configGets = blobGets(faulty).filter((r) => r.path.endsWith(image.configDigest));
        assertDeepEquals(configGets.map((r) => r.range), [
          null,
          `bytes=${Math.floor(image.manifest.config.size / 2)}-`,
        ]);
        assertDeepEquals(await listFiles(join(cacheDir, "ingest")), []);
      });

      await t.step("429 is retried after Retry-After", async () => {
        const faulty = await proxy(registry, { mode: "rate-limit", retryAfter: 1, paths: /\/manifests\// });
        const cacheDir = await tempDir();
        const image = await pullImage(`${faulty.url}/team/busybox:1.36`, {
          ...quiet,
          cacheDir,
          retry: { baseDelayMs: 1, maxDelayMs: 5_000 },
        });
        assertStrictEquals(image.digest, busybox.digest);
        const manifests = manifestGets(faulty);
        assertDeepEquals(manifests.map((r) => r.status), [429, 200]);
        // The registry saw the second request no sooner than it asked (the back-off alone is 1 ms).
        const waited = manifests[1]!.at - manifests[0]!.at;
        assert(waited >= 0.95, `waited ${waited}s for Retry-After: 1`);
        // Retry-After is capped by maxDelayMs: the wait the client chose, as its retry listener hears it.
        const capped = await proxy(registry, { mode: "rate-limit", retryAfter: 3600, paths: /\/manifests\// });
        const client = new RegistryClient(capped.url, { retry: { baseDelayMs: 1, maxDelayMs: 200 } });
        const delays: number[] = [];
        const response = await client.request("team/busybox", "/manifests/1.36", {
          headers: { accept: MANIFEST_ACCEPT },
        }, (_, delay) => {
          delays.push(delay);
          // Said before the wait: an uncapped one fails here rather than sleeping an hour.
          if (delay > 200) throw new Error(`a wait of ${delay} ms, past maxDelayMs`);
        });
        await response.body?.cancel();
        assertStrictEquals(response.status, 200);
        assertDeepEquals(delays, [200], "an hour's Retry-After waited 200 ms, the cap");
      });

      await t.step("basic auth (htpasswd): credentials given, from config.json, missing, wrong", async () => {
        const basic = await startRegistry({ auth: "basic" });
        cleanup.push(() => basic.stop());
        await pushImage(basic, "private/busybox", "busybox");
        const ref = `${basic.url}/private/busybox`;
        const credentials = { username: basic.username, password: basic.password };
        const image = await pullImage(ref, { ...quiet, cacheDir: await tempDir(), credentials });
        assertStrictEquals(image.digest, busybox.digest);

        const home = await tempDir();
        await Deno.writeTextFile(
          join(home, "config.json"),
          JSON.stringify({ auths: { [`http://${basic.url}`]: { auth: btoa(`${basic.username}:${basic.password}`) } } }),
        );
        const fromConfig = await pullImage(ref, {
          ...quiet,
          dockerConfig: join(home, "config.json"),
          cacheDir: await tempDir(),
        });
        assertStrictEquals(fromConfig.digest, busybox.digest);

        await assertRejects(
          pullImage(ref, { ...quiet, cacheDir: await tempDir() }),
          new RegExp(`${basic.url} requires a user name and password: pass --username and --password-stdin`),
        );
        await assertRejects(
          pullImage(ref, { ...quiet, cacheDir: await tempDir(), credentials: { ...credentials, password: "wrong" } }),
          /401 Unauthorized: authentication required \(UNAUTHORIZED\)/,
        );
      });

      await t.step("a redirect to another host gets no Authorization", async () => {
        const basic = await startRegistry({ auth: "basic" });
        cleanup.push(() => basic.stop());
        await pushImage(basic, "private/busybox", "busybox");
        const faulty = await proxy(basic, { mode: "redirect-blob" });
        const credentials = { username: basic.username, password: basic.password };
        const image = await pullImage(`${faulty.url}/private/busybox`, {
          ...quiet,
          cacheDir: await tempDir(),
          credentials,
        });
        assertStrictEquals(digestOf(await Deno.readFile(image.layers[0]!.path)), image.layers[0]!.digest);
        assertStrictEquals(faulty.stats.redirects, 2, "config and layer");
        assertStrictEquals(faulty.stats.secondHost.length, 2);
        assertStrictEquals(faulty.secondHostAuthorizations(), 0, "no Authorization at the second host");
        const redirected = faulty.stats.requests.filter((r) => r.action === "redirect");
        assert(redirected.every((r) => r.authorization?.startsWith("Basic ")), "the registry itself got it");
      });

      await t.step("anonymous bearer tokens: one token for the whole pull, credentials when given", async () => {
        const tokenRegistry = await startRegistry({ auth: "token" });
        cleanup.push(() => tokenRegistry.stop());
        await pushImage(tokenRegistry, "tok/busybox", "busybox");
        const service = tokenRegistry.tokenService!;
        const before = service.requests.length;
        const cacheDir = await tempDir();
        const image = await pullImage(`${tokenRegistry.url}/tok/busybox`, { ...quiet, cacheDir });
        assertStrictEquals(image.digest, busybox.digest);
        const asked = service.requests.slice(before);
        assertStrictEquals(asked.length, 1, "manifest, config and layer share one token");
        assertDeepEquals(asked[0]!.scopes, ["repository:tok/busybox:pull"]);
        assertStrictEquals(asked[0]!.service, service.service);
        assertStrictEquals(asked[0]!.user, null, "anonymous");

        const credentials = { username: tokenRegistry.username, password: tokenRegistry.password };
        await pullImage(`${tokenRegistry.url}/tok/busybox`, { ...quiet, cacheDir: await tempDir(), credentials });
        assertStrictEquals(service.requests.at(-1)!.user, tokenRegistry.username);
        await assertRejects(
          pullImage(`${tokenRegistry.url}/tok/busybox`, {
            ...quiet,
            cacheDir: await tempDir(),
            credentials: { ...credentials, password: "wrong" },
          }),
          /cannot get a token with the given credentials from http:\/\/127\.0\.0\.1:\d+\/token for repository:tok\/busybox:pull: 401/,
        );
      });

      await t.step("tokens are cached until they expire", async () => {
        const tokenRegistry = await startRegistry({ auth: "token", tokenExpiresIn: 120 });
        cleanup.push(() => tokenRegistry.stop());
        await pushImage(tokenRegistry, "tok/busybox", "busybox");
        const service = tokenRegistry.tokenService!;
        let now = Date.now();
        const auth = new Authenticator({
          domain: tokenRegistry.url,
          send: (url, init) => fetch(url, { ...init, redirect: "manual" }),
          now: () => now,
        });
        const scope = "repository:tok/busybox:pull";
        const url = `http://${tokenRegistry.url}/v2/tok/busybox/manifests/latest`;
        const challenge = await fetch(url, { headers: { accept: MANIFEST_ACCEPT } });
        await challenge.body?.cancel();
        assertStrictEquals(challenge.status, 401);
        const [bearer] = parseWwwAuthenticate(challenge.headers.get("www-authenticate")!);
        assertDeepEquals(bearer, {
          scheme: "bearer",
          params: { realm: service.realm, service: service.service, scope: "repository:tok/busybox:pull" },
        });
        const n = service.requests.length;
        assertStrictEquals(await auth.answer(challenge, scope, undefined), true);
        const first = await auth.authorization(scope);
        assertMatch(first!, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
        const ok = await fetch(url, { headers: { accept: MANIFEST_ACCEPT, authorization: first! } });
        await ok.body?.cancel();
        assertStrictEquals(ok.status, 200, "the registry accepts the token");
        now += 100_000;
        assertStrictEquals(await auth.authorization(scope), first, "still valid after 100 s of 120");
        assertStrictEquals(service.requests.length - n, 1);
        now += 20_000;
        const renewed = await auth.authorization(scope);
        assertStrictEquals(service.requests.length - n, 2, "renewed once expired");
        assert(renewed?.startsWith("Bearer "));
        // Another scope is another token.
        await auth.authorization("repository:other:pull");
        assertStrictEquals(service.requests.length - n, 3);
      });
    } finally {
      for (const undo of cleanup.reverse()) await undo().catch(() => {});
    }
  },
});

// ---------------------------------------------------------------- a lying server

/**
 * A fake registry for what a real one does not serve: a schema 1 manifest,
 * a body that does not match the digest asked for or Docker-Content-Digest,
 * an oversized manifest.
 */
Deno.test("schema 1, lying digests and oversized manifests are refused", async () => {
  const good = json({ schemaVersion: 2, mediaType: MEDIA_TYPE.ociManifest, config: CONFIG, layers: [LAYER] });
  const other = json({ schemaVersion: 2, mediaType: MEDIA_TYPE.ociManifest, config: CONFIG, layers: [] });
  const blob = new Uint8Array(100_000).map((_, i) => (i * 7919) % 251);
  const blobRanges: (string | null)[] = [];
  const accepts: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    accepts.push(req.headers.get("accept") ?? "");
    const reply = (body: Uint8Array | ReadableStream<Uint8Array>, type: string, extra: Record<string, string> = {}) =>
      new Response(body as BodyInit, { headers: { "content-type": type, ...extra } });
    switch (path) {
      case "/v2/x/manifests/schema1":
        return reply(
          json({ schemaVersion: 1, name: "x", tag: "schema1", fsLayers: [], history: [], signatures: [] }),
          MEDIA_TYPE.dockerSchema1Signed,
        );
      case `/v2/x/manifests/${digestOf(good)}`:
        return reply(other, MEDIA_TYPE.ociManifest); // not what was asked for
      case "/v2/x/manifests/bad-header":
        return reply(good, MEDIA_TYPE.ociManifest, { "docker-content-digest": digestOf(other) });
      case "/v2/x/manifests/huge": {
        // No Content-Length: the cap must hold while reading.
        let sent = 0;
        const chunk = new Uint8Array(64 * 1024).fill(0x20);
        return reply(
          new ReadableStream({
            pull(c) {
              if (sent > MAX_MANIFEST_BYTES * 2) return c.close();
              sent += chunk.length;
              c.enqueue(chunk);
            },
          }),
          MEDIA_TYPE.ociManifest,
        );
      }
      case `/v2/x/blobs/${digestOf(blob)}`: {
        const range = req.headers.get("range");
        blobRanges.push(range);
        if (range === null) {
          // Half the blob, then nothing: a stalled transfer.
          let sent = false;
          return reply(
            new ReadableStream({
              pull(c) {
                if (sent) return new Promise(() => {});
                sent = true;
                c.enqueue(blob.slice(0, 50_000));
              },
            }),
            "application/octet-stream",
            { "content-length": String(blob.length) },
          );
        }
        const start = Number(/^bytes=(\d+)-$/.exec(range)![1]);
        return new Response(blob.slice(start), {
          status: 206,
          headers: { "content-range": `bytes ${start}-${blob.length - 1}/${blob.length}` },
        });
      }
      default:
        return new Response("{}", { status: 404 });
    }
  });
  try {
    const client = new RegistryClient(`127.0.0.1:${server.addr.port}`, { retry: FAST_RETRY });
    await assertRejects(
      client.fetchManifest("x", "schema1"),
      /unsupported manifest: it is a Docker image manifest version 2, schema 1, which gcr does not support/,
    );
    assertStrictEquals(accepts[0], MANIFEST_ACCEPT);
    await assertRejects(
      client.fetchManifest("x", digestOf(good)),
      new RegExp(
        `digest mismatch for .*x@${digestOf(good)}: the registry sent a manifest with digest ${digestOf(other)}`,
      ),
    );
    await assertRejects(
      client.fetchManifest("x", "bad-header"),
      /digest mismatch for .*x:bad-header: Docker-Content-Digest says sha256:[a-f0-9]{64}, the body is sha256:/,
    );
    await assertRejects(
      client.fetchManifest("x", "huge"),
      /the manifest of .*x:huge is more than the limit of 4194304 bytes/,
    );
    // A transfer that stalls is cut after idleTimeoutMs and resumed.
    const stallCache = await Deno.makeTempDir();
    try {
      const patient = new RegistryClient(`127.0.0.1:${server.addr.port}`, {
        retry: { ...FAST_RETRY, idleTimeoutMs: 300 },
      });
      const statuses: string[] = [];
      const { path } = await patient.downloadBlob(
        "x",
        { mediaType: "application/octet-stream", digest: digestOf(blob), size: blob.length },
        new BlobCache(stallCache),
        (status) => statuses.at(-1) !== status && statuses.push(status),
      );
      assertDeepEquals(await Deno.readFile(path), blob);
      assertDeepEquals(blobRanges, [null, "bytes=50000-"]);
      assert(statuses.includes("Retrying in 1s: no data for 0.3s"), statuses.join("\n"));
    } finally {
      await Deno.remove(stallCache, { recursive: true });
    }
    // Nothing unverified went into a cache.
    const cacheDir = await Deno.makeTempDir();
    try {
      const cache = new BlobCache(cacheDir);
      await assertRejects(client.fetchManifest("x", digestOf(good), { cache }), /digest mismatch/);
      assertStrictEquals(await cache.has(digestOf(other)), false);
      assertStrictEquals(await cache.has(digestOf(good)), false);
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  } finally {
    await server.shutdown();
  }
});
