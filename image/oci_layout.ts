/**
 * `oci:DIR[:TAG]`: an image from an OCI image layout (index.json and blobs/),
 * as skopeo and umoci write one.
 *
 * @module
 */

import { resolve } from "node:path";
import { digestAlgorithm, digestOf } from "./blob_cache.ts";
import {
  type Descriptor,
  hostPlatform,
  type ImageManifest,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  MEDIA_TYPE,
  parseManifest,
  parsePlatform,
  selectManifest,
} from "./manifest.ts";
import { type PullProgress, shortDigest } from "./progress.ts";
import { validateDigest } from "./reference.ts";
import { hashFile, loadConfig, platformOf, type ResolvedImage } from "./resolved.ts";

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

export async function fromOciLayout(
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
  const reference = `oci:${resolve(dir)}${tag !== undefined ? `:${tag}` : ""}`;
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
