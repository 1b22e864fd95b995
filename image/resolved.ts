/**
 * What every image source yields (a resolved image: its config and its layers
 * in order), and what the sources share to get there: reading the config,
 * checking the platform, importing a layer file, hashing.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { type LayerSource } from "./apply_layer.ts";
import { BlobCache } from "./blob_cache.ts";
import { formatPlatform, type ImageConfig, parseImageConfig, type Platform, platformScore } from "./manifest.ts";
import { type PullProgress, shortDigest } from "./progress.ts";
import { TarReader } from "./tar.ts";

/** A resolved image, ready to assemble. */
export interface ResolvedImage {
  reference: string;
  digest: string | null;
  manifestDigest: string | null;
  configDigest: string;
  platform: Platform;
  layers: (LayerSource & { digest: string })[];
}

/** The digest of a file, streamed. */
export async function hashFile(path: string, algorithm: string): Promise<{ digest: string; size: number }> {
  const hash = createHash(algorithm);
  let size = 0;
  using file = await Deno.open(path);
  for await (const chunk of file.readable) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `${algorithm}:${hash.digest("hex")}`, size };
}

export function platformOf(config: ImageConfig): Platform {
  return { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
}

/** Parses a config and checks its platform: an error when one was asked for, a warning otherwise. */
export function loadConfig(
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

/**
 * Copies the current member into the cache, hashing it. An uncompressed tar
 * must hash to `expected` (its diff_id, or the digest its blobs/ name gives);
 * a compressed one is stored under its own digest and checked against the
 * diff_id afterwards.
 */
export async function importLayer(
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

const GZIP_MAGIC = [0x1f, 0x8b];

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

export async function mediaTypeOfFile(path: string): Promise<string> {
  using file = await Deno.open(path);
  const head = new Uint8Array(4);
  const n = (await file.read(head)) ?? 0;
  return mediaTypeOf(head.subarray(0, n));
}

export function mediaTypeOf(head: Uint8Array): string {
  if (startsWith(head, GZIP_MAGIC)) return "tar+gzip";
  if (startsWith(head, ZSTD_MAGIC)) return "tar+zstd";
  return "tar";
}
