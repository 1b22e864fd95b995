/**
 * The blob feed: a reader follows a blob's partial file while it is written,
 * and its stream ends only when the blob has been verified, or fails with
 * the download's error. Driven by a real BlobCache ingest, as the registry
 * client drives it.
 */
import { assertDeepEquals, assertRejects, assertStrictEquals } from "../helpers.ts";
import { BlobCache, BlobVerificationError, digestOf, type Ingest } from "../../image/blob_cache.ts";
import { BlobFeed, BlobFeedRestartedError } from "../../image/blob_feed.ts";

const BLOB = Uint8Array.from({ length: 3 << 20 }, (_, i) => (i * 7919) >> 8);
const DIGEST = digestOf(BLOB);

async function withIngest(test: (ingest: Ingest, cache: BlobCache) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gcr-blob-feed-" });
  const cache = new BlobCache(dir);
  const ingest = (await cache.ingest(DIGEST, BLOB.length))!;
  try {
    await test(ingest, cache);
  } finally {
    ingest.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Reads up to `bytes` from `reader` (fewer if it ends). */
async function readSome(reader: ReadableStreamDefaultReader<Uint8Array>, bytes: number): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total < bytes) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  return chunks;
}

function joined(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

Deno.test("a reader gets the bytes as they are written, and its end only once the blob is verified", () =>
  withIngest(async (ingest) => {
    const feed = new BlobFeed(BLOB.length);
    await feed.follow(ingest);
    const reader = feed.readable().getReader();
    await ingest.write(BLOB.subarray(0, 1 << 20));
    // The first MiB is readable before the rest exists.
    assertDeepEquals(joined(await readSome(reader, 1 << 20)), BLOB.subarray(0, 1 << 20), "the first MiB");
    await ingest.write(BLOB.subarray(1 << 20));
    const rest = await readSome(reader, BLOB.length - (1 << 20));
    assertDeepEquals(joined(rest), BLOB.subarray(1 << 20), "the rest");
    // Every byte is read, but the digest is not checked yet: no end.
    let ended = false;
    const end = reader.read().then((result) => ended = result.done);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assertStrictEquals(ended, false, "no end before verification");
    await ingest.verify();
    feed.verified();
    await end;
    assertStrictEquals(ended, true, "the end after verification");
    feed.close();
  }));

Deno.test("a digest mismatch fails the reader with the download's error", () =>
  withIngest(async (ingest) => {
    const feed = new BlobFeed(BLOB.length);
    await feed.follow(ingest);
    const reader = feed.readable().getReader();
    const bad = BLOB.slice();
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0xff;
    await ingest.write(bad);
    assertStrictEquals(joined(await readSome(reader, bad.length)).length, bad.length, "every byte read");
    const error = await assertRejects(() => ingest.verify(), BlobVerificationError);
    feed.fail(error);
    await assertRejects(() => reader.read(), BlobVerificationError);
    feed.close();
  }));

Deno.test("bytes written again under a reader that consumed some: a restart error, not a mix of both", () =>
  withIngest(async (ingest) => {
    const feed = new BlobFeed(BLOB.length);
    await feed.follow(ingest);
    const reader = feed.readable().getReader();
    await ingest.write(BLOB.subarray(0, 4096));
    await readSome(reader, 4096);
    await ingest.reset(); // a server that ignored Range sends the blob again
    await ingest.write(BLOB);
    await assertRejects(() => reader.read(), BlobFeedRestartedError);
    feed.close();
  }));

Deno.test("a reset before the reader consumed anything is followed, not an error", () =>
  withIngest(async (ingest) => {
    const feed = new BlobFeed(BLOB.length);
    await feed.follow(ingest);
    await ingest.write(BLOB.subarray(0, 4096).map((b) => b ^ 1));
    await ingest.reset();
    await ingest.write(BLOB);
    await ingest.verify();
    feed.verified();
    const read = joined(await Array.fromAsync(feed.readable()));
    assertDeepEquals(read, BLOB, "the bytes written after the reset");
    feed.close();
  }));

Deno.test("a blob already in the cache is read whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gcr-blob-feed-" });
  try {
    const cache = new BlobCache(dir);
    const path = await cache.put(DIGEST, BLOB);
    const feed = new BlobFeed(BLOB.length);
    await feed.cached(path);
    assertDeepEquals(joined(await Array.fromAsync(feed.readable())), BLOB, "the cached blob");
    feed.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
