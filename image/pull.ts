/**
 * `gcr pull` and `img2rootfs`: an image from a registry, a `docker save`
 * archive or an OCI image layout, verified and assembled into a rootfs
 * folder.
 *
 * Every source is read through its digests: registry blobs are verified as
 * they stream into the blob cache (image/registry.ts); an OCI layout's
 * manifests, config and layers are hashed before use; a docker-archive's
 * layer tars are copied into the blob cache and checked against the config's
 * `rootfs.diff_ids` (the sha256 of the uncompressed tar). Then
 * image/apply_layer.ts assembles the layers in a temporary folder beside the
 * output and renames it into place, so a failed pull leaves the previous
 * rootfs untouched.
 *
 * What was pulled is recorded in `.gcr-image-<name>.json` beside the rootfs
 * folder, never inside it: the rootfs is exactly the image.
 *
 * ```ts
 * const record = await pullToRootfs("alpine", "rootfs/alpine", { progress: createProgress() });
 * console.log(record.manifestDigest);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { assembleRootfs, type LayerSource } from "./apply_layer.ts";
import type { Credentials } from "./auth.ts";
import { BlobCache, digestAlgorithm, digestOf } from "./blob_cache.ts";
import { decompressLayer } from "./decompress.ts";
import {
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageConfig,
  type ImageManifest,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPE,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  type Platform,
  platformScore,
  selectManifest,
} from "./manifest.ts";
import { createProgress, humanSize, type PullProgress, shortDigest } from "./progress.ts";
import { parseReference, validateDigest } from "./reference.ts";
import { pullImage } from "./registry.ts";
import { TarReader } from "./tar.ts";
import { pathInfo } from "../host/files.ts";

/** Where an image comes from. */
export type ImageSourceSpec =
  | { kind: "registry"; reference: string }
  | { kind: "docker-archive"; path: string; reference?: string }
  | { kind: "oci"; path: string; tag?: string };

export interface PullToRootfsOptions {
  /** The blob cache; default {@link defaultCacheDir}. */
  cacheDir?: string;
  /** `os/arch[/variant]`; default the host's. */
  platform?: string;
  insecure?: boolean;
  credentials?: Credentials;
  /** Where to read `~/.docker/config.json` credentials; null for none. */
  dockerConfig?: string | null;
  progress?: PullProgress;
  /** Default: not root. */
  rootless?: boolean;
  /** Told about entries skipped on purpose (device nodes when rootless). */
  onNotice?: (message: string) => void;
}

/** What `.gcr-image-<name>.json` holds. */
export interface ImageRecord {
  /** The source as given: `alpine`, `docker-archive:/abs/saved.tar`, `oci:/abs/layout:tag`. */
  source: string;
  /** The image's reference: normalised for a registry, the archive's RepoTags[0] or the layout's tag otherwise. */
  reference: string;
  /** The digest the reference resolved to (an index's, for a multi-platform image). */
  digest: string | null;
  /** The image manifest's digest (null for a docker-archive, which has none). */
  manifestDigest: string | null;
  configDigest: string;
  platform: string;
  layers: string[];
  /** ISO 8601. */
  pulled: string;
}

/** A resolved image, ready to assemble. */
interface ResolvedImage {
  reference: string;
  digest: string | null;
  manifestDigest: string | null;
  configDigest: string;
  platform: Platform;
  layers: (LayerSource & { digest: string })[];
}

/** The blob cache: `$GCR_CACHE`; /var/cache/gcr as root; `$XDG_CACHE_HOME/gcr` (default ~/.cache/gcr) rootless. */
export function defaultCacheDir(): string {
  const explicit = Deno.env.get("GCR_CACHE");
  if (explicit) return explicit;
  if (Deno.uid() === 0) return "/var/cache/gcr";
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/gcr`;
  const home = Deno.env.get("HOME");
  if (!home) throw new Error("cannot find a cache folder: set GCR_CACHE, XDG_CACHE_HOME or HOME");
  return `${home}/.cache/gcr`;
}

/** `docker-archive:PATH`, `oci:DIR[:TAG]`, `docker://REF` or a registry reference. */
export function parseSource(source: string): ImageSourceSpec {
  if (source.startsWith("docker-archive:")) {
    const rest = source.slice("docker-archive:".length);
    if (rest === "") throw new Error("docker-archive: needs a path");
    // skopeo's form docker-archive:PATH:REPO:TAG: the path is the longest prefix that exists.
    if (!pathInfo(rest, true)) {
      for (let at = rest.indexOf(":"); at > 0; at = rest.indexOf(":", at + 1)) {
        if (pathInfo(rest.slice(0, at), true)) {
          return { kind: "docker-archive", path: rest.slice(0, at), reference: rest.slice(at + 1) };
        }
      }
    }
    return { kind: "docker-archive", path: rest };
  }
  if (source.startsWith("oci:")) {
    const rest = source.slice("oci:".length);
    if (rest === "") throw new Error("oci: needs a layout folder");
    const colon = rest.lastIndexOf(":");
    if (!pathInfo(rest, true) && colon > rest.lastIndexOf("/")) {
      return { kind: "oci", path: rest.slice(0, colon), tag: rest.slice(colon + 1) };
    }
    return { kind: "oci", path: rest };
  }
  const reference = source.startsWith("docker://") ? source.slice("docker://".length) : source;
  parseReference(reference); // throws a clear error for a bad one
  return { kind: "registry", reference };
}

/**
 * The default rootfs folder name of a source: the repository's last path
 * component (`alpine`, `app` for localhost:5000/team/app:1.2), or the
 * archive's or layout's base name without extension.
 */
export function defaultName(source: string): string {
  const spec = parseSource(source);
  if (spec.kind === "registry") {
    const ref = parseReference(spec.reference);
    return ref.repository.slice(ref.repository.lastIndexOf("/") + 1);
  }
  const base = spec.path.replace(/\/+$/, "").split("/").pop() ?? "";
  const name = base.replace(/\.(tar\.gz|tar\.zst|tgz|tar|oci)$/i, "").replace(/^\.+/, "");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new Error(`cannot make a rootfs name from ${JSON.stringify(base)}: pass --name`);
  }
  return name;
}

/** The record file of a rootfs folder: `<parent>/.gcr-image-<name>.json`. */
export function recordPath(output: string): string {
  const trimmed = absolute(output).replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  return `${trimmed.slice(0, slash) || ""}/.gcr-image-${trimmed.slice(slash + 1)}.json`;
}

/** The record of a rootfs folder, or undefined when it was not pulled by gcr. */
export async function readRecord(output: string): Promise<ImageRecord | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(recordPath(output))) as ImageRecord;
  } catch {
    return undefined;
  }
}

/**
 * Pulls `source` and assembles it into `output` (replacing what is there
 * only once every layer applied); writes the record beside it.
 */
export async function pullToRootfs(
  source: string,
  output: string,
  opts: PullToRootfsOptions = {},
): Promise<ImageRecord> {
  const spec = parseSource(source);
  const progress = opts.progress ?? createProgress("quiet");
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  let image: ResolvedImage;
  let shownSource = source;
  switch (spec.kind) {
    case "registry":
      image = await fromRegistry(spec.reference, cacheDir, opts, progress);
      break;
    case "oci":
      shownSource = `oci:${absolute(spec.path)}${spec.tag !== undefined ? `:${spec.tag}` : ""}`;
      image = await fromOciLayout(spec.path, spec.tag, opts.platform, progress);
      break;
    case "docker-archive":
      shownSource = `docker-archive:${absolute(spec.path)}${spec.reference !== undefined ? `:${spec.reference}` : ""}`;
      image = await fromDockerArchive(spec.path, spec.reference, cacheDir, opts.platform, progress);
      break;
  }

  const started = performance.now();
  await assembleRootfs(output, image.layers, {
    rootless: opts.rootless ?? Deno.uid() !== 0,
    onNotice: opts.onNotice ?? ((message) => progress.note(`notice: ${message}`)),
    onLayer: (index, layer) => progress.note(`Extracting layer ${index}/${image.layers.length} (${layer.name})`),
  });
  const record: ImageRecord = {
    source: shownSource,
    reference: image.reference,
    digest: image.digest,
    manifestDigest: image.manifestDigest,
    configDigest: image.configDigest,
    platform: formatPlatform(image.platform),
    layers: image.layers.map((layer) => layer.digest),
    pulled: new Date().toISOString(),
  };
  const path = recordPath(output);
  const temporary = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(temporary, JSON.stringify(record, null, 2) + "\n");
  await Deno.rename(temporary, path);
  progress.note(`Extracted into ${absolute(output)} in ${((performance.now() - started) / 1000).toFixed(1)}s`);
  return record;
}

// ---------------------------------------------------------------------------
// Registry

async function fromRegistry(
  reference: string,
  cacheDir: string,
  opts: PullToRootfsOptions,
  progress: PullProgress,
): Promise<ResolvedImage> {
  const pulled = await pullImage(reference, {
    cacheDir,
    progress,
    ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
    ...(opts.insecure !== undefined ? { insecure: opts.insecure } : {}),
    ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
    ...(opts.dockerConfig !== undefined ? { dockerConfig: opts.dockerConfig } : {}),
  });
  return {
    reference: pulled.reference,
    digest: pulled.digest,
    manifestDigest: pulled.manifestDigest,
    configDigest: pulled.configDigest,
    platform: pulled.platform,
    layers: pulled.layers.map((layer) => ({
      digest: layer.digest,
      mediaType: layer.mediaType,
      name: shortDigest(layer.digest),
      open: async () => (await Deno.open(layer.path)).readable,
    })),
  };
}

// ---------------------------------------------------------------------------
// OCI image layout

const REF_NAME = "org.opencontainers.image.ref.name";

/** Reads a blob of an OCI layout into memory, checking size and digest. */
async function readLayoutBlob(dir: string, descriptor: Descriptor, limit: number, what: string): Promise<Uint8Array> {
  const path = layoutBlobPath(dir, descriptor.digest);
  const info = await Deno.stat(path).catch(() => {
    throw new Error(`${what} ${descriptor.digest} is missing from ${dir}/blobs`);
  });
  if (info.size > limit) throw new Error(`${what} ${descriptor.digest} is ${info.size} bytes, more than ${limit}`);
  if (info.size !== descriptor.size) {
    throw new Error(`${what} ${descriptor.digest} is ${info.size} bytes, its descriptor says ${descriptor.size}`);
  }
  const bytes = await Deno.readFile(path);
  const actual = digestOf(bytes, digestAlgorithm(descriptor.digest));
  if (actual !== descriptor.digest) {
    throw new Error(`digest mismatch in ${dir}: ${what} should be ${descriptor.digest}, the file is ${actual}`);
  }
  return bytes;
}

function layoutBlobPath(dir: string, digest: string): string {
  validateDigest(digest); // a digest becomes a path: no other shape may pass
  const colon = digest.indexOf(":");
  return `${dir}/blobs/${digest.slice(0, colon)}/${digest.slice(colon + 1)}`;
}

/** The digest of a file, streamed. */
async function hashFile(path: string, algorithm: string): Promise<{ digest: string; size: number }> {
  const hash = createHash(algorithm);
  let size = 0;
  using file = await Deno.open(path);
  for await (const chunk of file.readable) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `${algorithm}:${hash.digest("hex")}`, size };
}

async function fromOciLayout(
  dir: string,
  tag: string | undefined,
  platformSpec: string | undefined,
  progress: PullProgress,
): Promise<ResolvedImage> {
  const layoutFile = await Deno.readTextFile(`${dir}/oci-layout`).catch(() => {
    throw new Error(`${dir} is not an OCI image layout (no oci-layout file)`);
  });
  if (JSON.parse(layoutFile).imageLayoutVersion === undefined) {
    throw new Error(`${dir}/oci-layout: no imageLayoutVersion`);
  }
  const indexBytes = await Deno.readFile(`${dir}/index.json`);
  if (indexBytes.length > MAX_MANIFEST_BYTES) throw new Error(`${dir}/index.json is too large`);
  const index = parseManifest(indexBytes, MEDIA_TYPE.ociIndex);
  if (index.kind !== "index") throw new Error(`${dir}/index.json is not an image index`);
  const tags = index.manifests.map((d) => d.annotations?.[REF_NAME]).filter((t): t is string => t !== undefined);
  let entry: Descriptor | undefined;
  if (tag !== undefined) {
    entry = index.manifests.find((d) => d.annotations?.[REF_NAME] === tag);
  } else if (index.manifests.length === 1) {
    entry = index.manifests[0];
  } else {
    entry = index.manifests.find((d) => d.annotations?.[REF_NAME] === "latest");
  }
  if (entry === undefined) {
    throw new Error(
      `${tag !== undefined ? `no tag ${JSON.stringify(tag)}` : 'no tag given and no "latest"'} in ${dir} (tags: ${
        tags.join(", ") || "none"
      })`,
    );
  }
  const explicitPlatform = platformSpec !== undefined;
  const want = explicitPlatform ? parsePlatform(platformSpec) : hostPlatform();
  const reference = `oci:${absolute(dir)}${tag !== undefined ? `:${tag}` : ""}`;
  progress.note(`Reading ${reference}`);
  const topDigest = entry.digest;
  let descriptor = entry;
  let manifest: ImageManifest | undefined;
  for (let depth = 0; depth < 4; depth++) {
    const parsed = parseManifest(
      await readLayoutBlob(dir, descriptor, MAX_MANIFEST_BYTES, "manifest"),
      descriptor.mediaType,
    );
    if (parsed.kind === "manifest") {
      manifest = parsed;
      break;
    }
    descriptor = selectManifest(parsed, want);
  }
  if (manifest === undefined) throw new Error(`${reference}: indexes nested too deep`);
  const config = await loadConfig(
    await readLayoutBlob(dir, manifest.config, MAX_CONFIG_BYTES, "config"),
    reference,
    want,
    explicitPlatform,
    progress,
  );
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new Error(
      `${reference}: the config lists ${config.rootfs.diff_ids.length} layers, the manifest ${manifest.layers.length}`,
    );
  }
  // Layers are hashed before anything is extracted: a layer that does not match never reaches the rootfs.
  await Promise.all(manifest.layers.map(async (layer) => {
    const path = layoutBlobPath(dir, layer.digest);
    const { digest, size } = await hashFile(path, digestAlgorithm(layer.digest)).catch((error) => {
      throw new Error(`layer ${layer.digest} of ${reference}: ${(error as Error).message}`);
    });
    if (size !== layer.size) {
      throw new Error(`layer ${layer.digest} of ${reference} is ${size} bytes, not ${layer.size}`);
    }
    if (digest !== layer.digest) {
      throw new Error(`digest mismatch in ${dir}: layer should be ${layer.digest}, the file is ${digest}`);
    }
    progress.update(shortDigest(layer.digest), "Verified", size, size);
  }));
  progress.finish();
  return {
    reference,
    digest: topDigest,
    manifestDigest: descriptor.digest,
    configDigest: manifest.config.digest,
    platform: platformOf(config),
    layers: manifest.layers.map((layer) => ({
      digest: layer.digest,
      mediaType: layer.mediaType,
      name: shortDigest(layer.digest),
      open: async () => (await Deno.open(layoutBlobPath(dir, layer.digest))).readable,
    })),
  };
}

function platformOf(config: ImageConfig): Platform {
  return { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
}

/** Parses a config and checks its platform: an error when one was asked for, a warning otherwise. */
function loadConfig(
  bytes: Uint8Array,
  reference: string,
  want: Platform,
  explicit: boolean,
  progress: PullProgress,
): ImageConfig {
  const config = parseImageConfig(bytes);
  const platform = platformOf(config);
  if (platformScore(want, platform) === 0) {
    const message = `${reference} is for ${formatPlatform(platform)}, not ${formatPlatform(want)}`;
    if (explicit) throw new Error(message);
    progress.note(`Warning: ${message}`);
  }
  return config;
}

// ---------------------------------------------------------------------------
// docker save archives

interface ArchiveMember {
  type: string;
  linkName: string;
  size: number;
  body?: Uint8Array;
}

/** Small files of an archive are kept in memory on the first pass: manifest.json and configs. */
const SMALL_MEMBER = 4 << 20;
const SMALL_TOTAL = 64 << 20;

/** Reads every member of a tar file, `visit` deciding what to do with each body. */
async function scanTar(
  path: string,
  visit: (name: string, type: string, size: number, reader: TarReader, linkName: string) => Promise<void>,
): Promise<void> {
  const file = await Deno.open(path);
  const reader = new TarReader(file.readable);
  try {
    for (let entry; (entry = await reader.next());) {
      const name = entry.name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
      await visit(name, entry.type, entry.size, reader, entry.linkName);
    }
  } catch (error) {
    await reader.cancel(error);
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** A member's name after following symlinks inside the archive (legacy `<id>/layer.tar -> ../<hex>.tar`). */
function resolveMember(members: Map<string, ArchiveMember>, name: string): string {
  let current = name;
  for (let hops = 0; hops < 16; hops++) {
    const member = members.get(current);
    if (member === undefined) throw new Error(`the archive has no ${JSON.stringify(current)}`);
    if (member.type !== "symlink" && member.type !== "hardlink") return current;
    const base = member.type === "symlink" ? current.slice(0, current.lastIndexOf("/") + 1) : "";
    const parts: string[] = [];
    for (const part of (base + member.linkName).split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (parts.pop() === undefined) throw new Error(`${JSON.stringify(name)} links outside the archive`);
      } else parts.push(part);
    }
    current = parts.join("/");
  }
  throw new Error(`${JSON.stringify(name)}: too many links`);
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

async function fromDockerArchive(
  path: string,
  wanted: string | undefined,
  cacheDir: string,
  platformSpec: string | undefined,
  progress: PullProgress,
): Promise<ResolvedImage> {
  const shown = `docker-archive:${absolute(path)}`;
  progress.note(`Reading ${shown}`);
  // Pass 1: the small files (manifest.json, configs) and the names of everything.
  const members = new Map<string, ArchiveMember>();
  let kept = 0;
  await scanTar(path, async (name, type, size, reader, linkName) => {
    const member: ArchiveMember = { type, linkName, size };
    members.set(name, member);
    if (type === "file" && size <= SMALL_MEMBER && kept + size <= SMALL_TOTAL) {
      const body = new Uint8Array(size);
      let at = 0;
      await reader.readBody((chunk) => {
        body.set(chunk, at);
        at += chunk.length;
      });
      member.body = body;
      kept += size;
    }
  });
  const small = (name: string, what: string): Uint8Array => {
    const body = members.get(resolveMember(members, name))?.body;
    if (body === undefined) throw new Error(`${shown}: ${what} ${JSON.stringify(name)} is not a small regular file`);
    return body;
  };
  if (!members.has("manifest.json")) {
    if (members.has("index.json") && members.has("oci-layout")) {
      throw new Error(`${shown} is an OCI layout in a tar without manifest.json: unpack it and pull oci:<folder>`);
    }
    throw new Error(`${shown} is not a docker save archive: no manifest.json`);
  }
  let entries: { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[];
  try {
    entries = JSON.parse(new TextDecoder().decode(small("manifest.json", "manifest")));
    if (!Array.isArray(entries) || entries.length === 0) throw new Error("not a non-empty array");
  } catch (error) {
    throw new Error(`${shown}: invalid manifest.json: ${(error as Error).message}`);
  }
  const tagsOf = (e: { RepoTags?: unknown }) =>
    Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === "string") : [];
  let entry = entries[0]!;
  if (wanted !== undefined) {
    const found = entries.find((e) => tagsOf(e).some((t) => t === wanted || t === `docker.io/${wanted}`));
    if (found === undefined) {
      throw new Error(`${shown} has no image ${wanted} (it has: ${entries.flatMap(tagsOf).join(", ") || "none"})`);
    }
    entry = found;
  } else if (entries.length > 1) {
    throw new Error(
      `${shown} holds ${entries.length} images: name one, docker-archive:PATH:NAME:TAG (it has: ${
        entries.flatMap(tagsOf).join(", ")
      })`,
    );
  }
  if (typeof entry.Config !== "string" || !Array.isArray(entry.Layers)) {
    throw new Error(`${shown}: manifest.json entry without Config and Layers`);
  }
  const layerNames = entry.Layers.map((l) => {
    if (typeof l !== "string") throw new Error(`${shown}: manifest.json has a layer that is not a file name`);
    return resolveMember(members, l);
  });
  const configBytes = small(entry.Config, "config");
  const configDigest = digestOf(configBytes);
  const named = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(resolveMember(members, entry.Config))?.[1];
  if (named !== undefined && `sha256:${named}` !== configDigest) {
    throw new Error(`digest mismatch in ${shown}: config ${entry.Config} is ${configDigest}`);
  }
  const reference = tagsOf(entry)[0] ?? shown;
  const explicitPlatform = platformSpec !== undefined;
  const want = explicitPlatform ? parsePlatform(platformSpec) : hostPlatform();
  const config = loadConfig(configBytes, shown, want, explicitPlatform, progress);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== layerNames.length) {
    throw new Error(`${shown}: the config lists ${diffIds.length} layers, manifest.json ${layerNames.length}`);
  }

  // Pass 2: each layer file into the blob cache, verified.
  const cache = new BlobCache(cacheDir);
  const imported = new Map<string, { digest: string; mediaType: string }>();
  const expected = new Map<string, string>();
  layerNames.forEach((name, i) => {
    const diffId = validateDigest(String(diffIds[i]));
    const blob = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(name)?.[1];
    expected.set(name, blob !== undefined ? `sha256:${blob}` : diffId);
  });
  await Deno.mkdir(`${cacheDir}/ingest`, { recursive: true });
  await scanTar(path, async (name, _type, size, reader) => {
    const want = expected.get(name);
    if (want === undefined || imported.has(name)) return;
    if (await cache.has(want, size)) {
      imported.set(name, { digest: want, mediaType: await mediaTypeOfFile(cache.path(want)) });
      progress.update(shortDigest(want), "Already exists");
      return;
    }
    imported.set(name, await importLayer(cache, cacheDir, reader, want, size, name, shown, progress));
  });
  // A compressed legacy layer is named by its own digest: check what it inflates to against diff_ids.
  for (const [i, name] of layerNames.entries()) {
    const layer = imported.get(name);
    if (layer === undefined) throw new Error(`${shown}: layer ${name} is not in the archive`);
    if (layer.mediaType !== "tar" && layer.digest !== expected.get(name)) {
      const diffId = await hashStream(
        decompressLayer((await Deno.open(cache.path(layer.digest))).readable, layer.mediaType),
      );
      if (diffId !== diffIds[i]) {
        throw new Error(
          `digest mismatch in ${shown}: layer ${name} inflates to ${diffId}, the config says ${diffIds[i]}`,
        );
      }
    }
  }
  progress.finish();
  return {
    reference,
    digest: null,
    manifestDigest: null,
    configDigest,
    platform: platformOf(config),
    layers: layerNames.map((name) => {
      const layer = imported.get(name)!;
      return {
        digest: layer.digest,
        mediaType: layer.mediaType,
        name: shortDigest(layer.digest),
        open: async () => (await Deno.open(cache.path(layer.digest))).readable,
      };
    }),
  };
}

async function hashStream(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

async function mediaTypeOfFile(path: string): Promise<string> {
  using file = await Deno.open(path);
  const head = new Uint8Array(4);
  const n = (await file.read(head)) ?? 0;
  return mediaTypeOf(head.subarray(0, n));
}

function mediaTypeOf(head: Uint8Array): string {
  if (startsWith(head, GZIP_MAGIC)) return "tar+gzip";
  if (startsWith(head, ZSTD_MAGIC)) return "tar+zstd";
  return "tar";
}

/**
 * Copies the current member into the cache, hashing it. An uncompressed tar
 * must hash to `expected` (its diff_id, or the digest its blobs/ name gives);
 * a compressed one is stored under its own digest and checked against the
 * diff_id afterwards.
 */
async function importLayer(
  cache: BlobCache,
  cacheDir: string,
  reader: TarReader,
  expected: string,
  size: number,
  name: string,
  shown: string,
  progress: PullProgress,
): Promise<{ digest: string; mediaType: string }> {
  const temporary = `${cacheDir}/ingest/archive-${Deno.pid}-${crypto.randomUUID()}.partial`;
  const file = await Deno.open(temporary, { write: true, createNew: true, mode: 0o644 });
  const hash = createHash("sha256");
  const head = new Uint8Array(4);
  let written = 0;
  const id = shortDigest(expected);
  try {
    await reader.readBody((chunk) => {
      if (written < 4) head.set(chunk.subarray(0, 4 - written), written);
      hash.update(chunk);
      let at = 0;
      while (at < chunk.length) at += file.writeSync(chunk.subarray(at));
      written += chunk.length;
    });
    file.close();
    const digest = `sha256:${hash.digest("hex")}`;
    const mediaType = mediaTypeOf(head.subarray(0, Math.min(4, written)));
    const blobNamed = /blobs\/sha256\//.test(name);
    if (digest !== expected && (blobNamed || mediaType === "tar")) {
      throw new Error(
        `digest mismatch in ${shown}: layer ${name} is ${digest}, ${
          blobNamed ? "its name" : "the config's diff_id"
        } says ${expected}`,
      );
    }
    const path = cache.path(digest);
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.rename(temporary, path);
    progress.update(id, "Imported", size, size);
    return { digest, mediaType };
  } catch (error) {
    try {
      file.close();
    } catch { /* closed */ }
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

// ---------------------------------------------------------------------------
// gcr images

export interface ImageListing {
  images: { name: string; source: string; size: number; pulled: string | null }[];
  cache: { dir: string; blobs: number; size: number };
}

/** Disk usage of a tree (blocks, hard links counted once), without following symlinks. */
export function diskUsage(path: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (p: string) => {
    const info = Deno.lstatSync(p);
    if (info.nlink !== null && info.nlink > 1 && !info.isDirectory) {
      const key = `${info.dev}:${info.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    total += (info.blocks ?? 0) * 512;
    if (info.isDirectory) {
      for (const entry of Deno.readDirSync(p)) walk(`${p}/${entry.name}`);
    }
  };
  walk(path);
  return total;
}

/** What `gcr images` shows: the rootfs folders and the blob cache. */
export async function listImages(rootfsDir: string, cacheDir = defaultCacheDir()): Promise<ImageListing> {
  const images: ImageListing["images"] = [];
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(rootfsDir)].filter((e) => e.isDirectory && !e.name.startsWith(".")).map((e) => e.name)
      .sort();
  } catch { /* no folder yet */ }
  for (const name of names) {
    const record = await readRecord(`${rootfsDir}/${name}`);
    let size = 0;
    try {
      size = diskUsage(`${rootfsDir}/${name}`);
    } catch { /* unreadable parts: show what was counted */ }
    images.push({ name, source: record?.reference ?? "-", size, pulled: record?.pulled ?? null });
  }
  let blobs = 0;
  let size = 0;
  for await (const blob of new BlobCache(cacheDir).entries()) {
    blobs++;
    size += blob.size;
  }
  return { images, cache: { dir: cacheDir, blobs, size } };
}

/** The listing as a table. */
export function formatImages(listing: ImageListing): string {
  const rows = [["NAME", "SOURCE", "SIZE", "PULLED"]];
  for (const image of listing.images) {
    rows.push([image.name, image.source, humanSize(image.size), image.pulled?.replace(/\.\d+Z$/, "Z") ?? "-"]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ")
  );
  lines.push("");
  lines.push(
    `blob cache ${listing.cache.dir}: ${listing.cache.blobs} blob${listing.cache.blobs === 1 ? "" : "s"}, ${
      humanSize(listing.cache.size)
    }`,
  );
  return lines.join("\n");
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path.replace(/^\.\//, "")}`;
}
