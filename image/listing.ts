/**
 * What `gcr images` lists: the rootfs folders and the blob cache, with sizes.
 *
 * @module
 */

import { BlobCache } from "./blob_cache.ts";
import { humanSize } from "./progress.ts";
import { defaultCacheDir, readRecord } from "./pull.ts";

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
