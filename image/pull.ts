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
 * rootfs untouched. A registry's layers are extracted while they download
 * (image/blob_feed.ts): the folder is renamed into place only once every
 * blob has matched its digest and is durable in the cache.
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
import { resolve } from "node:path";
import { type AssembleOptions, assembleRootfs, type LayerSource, messageOf } from "./apply_layer.ts";
import { BlobFeedRestartedError } from "./blob_feed.ts";
import type { Credentials } from "./auth.ts";
import { formatPlatform } from "./manifest.ts";
import { createProgress, type PullProgress, shortDigest } from "./progress.ts";
import { parseReference } from "./reference.ts";
import { type PulledLayer, type PullUnderway, startPull } from "./registry.ts";
import { pathInfo } from "../host/files.ts";
import { fromDockerArchive } from "./docker_archive.ts";
import { fromOciLayout } from "./oci_layout.ts";
import { type ResolvedImage } from "./resolved.ts";

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
  /**
   * Extracted by an unprivileged user (ownership as it could be set), or by
   * root. Absent in records of older gcrs: such a rootfs is extracted again.
   */
  rootless?: boolean;
  /** ISO 8601. */
  pulled: string;
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
  const trimmed = resolve(output).replace(/\/+$/, "");
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
  let pull: PullUnderway | undefined;
  let shownSource = source;
  switch (spec.kind) {
    case "registry":
      pull = await fromRegistry(spec.reference, cacheDir, opts, progress);
      image = { ...pull, layers: pull.layers.map((layer) => ({ ...layer, name: shortDigest(layer.digest) })) };
      break;
    case "oci":
      shownSource = `oci:${resolve(spec.path)}${spec.tag !== undefined ? `:${spec.tag}` : ""}`;
      image = await fromOciLayout(spec.path, spec.tag, opts.platform, progress);
      break;
    case "docker-archive":
      shownSource = `docker-archive:${resolve(spec.path)}${spec.reference !== undefined ? `:${spec.reference}` : ""}`;
      image = await fromDockerArchive(spec.path, spec.reference, cacheDir, opts.platform, progress);
      break;
  }

  const started = performance.now();
  const assembly: AssembleOptions = {
    rootless: opts.rootless ?? Deno.uid() !== 0,
    onNotice: opts.onNotice ?? ((message) => progress.note(`notice: ${message}`)),
    onLayer: (index, layer) => progress.note(`Extracting layer ${index}/${image.layers.length} (${layer.name})`),
  };
  // Docker's "Image is up to date": a rootfs made from the same config and
  // layers, the same way, is not extracted again (that cost 1.4 s for the
  // Debian image). The record is written only after its rootfs is complete.
  const existing = await readRecord(output);
  if (
    existing !== undefined && existing.configDigest === image.configDigest &&
    existing.layers.join() === image.layers.map((layer) => layer.digest).join() &&
    existing.rootless === assembly.rootless && pathInfo(output)?.isDirectory
  ) {
    if (pull !== undefined) {
      try {
        await pull.done; // its blobs in the cache, verified, as a pull promises
      } finally {
        pull.close();
      }
    }
    progress.note(`${resolve(output)} holds this image already: not extracted again`);
    return existing;
  }
  if (pull === undefined) await assembleRootfs(output, image.layers, assembly);
  else await extractWhileDownloading(output, image, pull, assembly, progress);
  const record: ImageRecord = {
    source: shownSource,
    reference: image.reference,
    digest: image.digest,
    manifestDigest: image.manifestDigest,
    configDigest: image.configDigest,
    platform: formatPlatform(image.platform),
    layers: image.layers.map((layer) => layer.digest),
    rootless: assembly.rootless,
    pulled: new Date().toISOString(),
  };
  const path = recordPath(output);
  const temporary = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(temporary, JSON.stringify(record, null, 2) + "\n");
  await Deno.rename(temporary, path);
  progress.note(`Extracted into ${resolve(output)} in ${((performance.now() - started) / 1000).toFixed(1)}s`);
  return record;
}

// ---------------------------------------------------------------------------
// Registry

function fromRegistry(
  reference: string,
  cacheDir: string,
  opts: PullToRootfsOptions,
  progress: PullProgress,
): Promise<PullUnderway> {
  return startPull(reference, {
    cacheDir,
    progress,
    ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
    ...(opts.insecure !== undefined ? { insecure: opts.insecure } : {}),
    ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
    ...(opts.dockerConfig !== undefined ? { dockerConfig: opts.dockerConfig } : {}),
  });
}

/**
 * Assembles the layers as they download. The tree is put in place only
 * once every blob is verified and in the cache; a bad digest fails the
 * layer's stream, so nothing of it stays.
 */
async function extractWhileDownloading(
  output: string,
  image: ResolvedImage,
  pull: PullUnderway,
  assembly: AssembleOptions,
  progress: PullProgress,
): Promise<void> {
  try {
    await assembleRootfs(output, image.layers, { ...assembly, beforeReplacing: async () => void await pull.done });
  } catch (error) {
    // Bad bytes often break the gzip stream or the tar before the digest can
    // be checked: when the download failed, its error is the one to show.
    const pulled = await pull.done;
    if (!causedBy(error, BlobFeedRestartedError)) throw error;
    // What was extracted came from bytes the download replaced: start again from the cache.
    progress.note(`Extracting again from the cache: ${messageOf(error)}`);
    await assembleRootfs(output, pulled.layers.map(cachedLayer), assembly);
  } finally {
    pull.close();
  }
}

function cachedLayer(layer: PulledLayer): LayerSource {
  return {
    mediaType: layer.mediaType,
    name: shortDigest(layer.digest),
    open: async () => (await Deno.open(layer.path)).readable,
  };
}

/** Whether `error` or one of its causes is a `type`. */
function causedBy(error: unknown, type: new (...args: never[]) => Error): boolean {
  let e: unknown = error;
  while (e instanceof Error) {
    if (e instanceof type) return true;
    e = (e as Error).cause; // (TypeScript narrows e to never after the check above)
  }
  return false;
}

// ---------------------------------------------------------------------------
// OCI image layout
