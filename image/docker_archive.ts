/**
 * `docker-archive:PATH`: an image from `docker save` output (manifest.json,
 * the config, layer tars), read as one stream.
 *
 * @module
 */
import { resolve } from "node:path";
import { createHash } from "node:crypto";
import { BlobCache, digestOf } from "./blob_cache.ts";
import { decompressLayer } from "./decompress.ts";
import { hostPlatform, parsePlatform } from "./manifest.ts";
import { type PullProgress, shortDigest } from "./progress.ts";
import { validateDigest } from "./reference.ts";
import { TarReader } from "./tar.ts";
import { importLayer, loadConfig, mediaTypeOfFile, platformOf, type ResolvedImage } from "./resolved.ts";

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

export async function fromDockerArchive(
  path: string,
  wanted: string | undefined,
  cacheDir: string,
  platformSpec: string | undefined,
  progress: PullProgress,
): Promise<ResolvedImage> {
  const shown = `docker-archive:${resolve(path)}`;
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
