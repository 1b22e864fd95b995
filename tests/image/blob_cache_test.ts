/**
 * The blob cache: nothing unverified becomes a blob, partial files resume,
 * and two writers of one blob take turns.
 */
import { assert, assertDeepEquals, assertMatch, assertRejects, assertStrictEquals, assertThrows } from "../helpers.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { BlobCache, BlobVerificationError, digestOf } from "../../image/blob_cache.ts";
import { exists } from "../../host/files.ts";
import { sleep } from "../../host/time.ts";

function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(n, i + 65536)));
  return bytes;
}

async function ingestFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(dir, "ingest"))) names.push(entry.name);
  } catch {
    // no ingest folder yet
  }
  return names;
}

async function withCache(test: (cache: BlobCache, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gcr-blob-cache-" });
  try {
    await test(new BlobCache(dir), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("put stores verified bytes at blobs/<alg>/<hex>", () =>
  withCache(async (cache, dir) => {
    const bytes = new TextEncoder().encode("hello\n");
    const digest = digestOf(bytes);
    assertStrictEquals(digest, "sha256:" + createHash("sha256").update(bytes).digest("hex"));
    assertStrictEquals(await cache.has(digest), false);
    const path = await cache.put(digest, bytes);
    assertStrictEquals(path, join(dir, "blobs", "sha256", digest.slice(7)));
    assertDeepEquals(await Deno.readFile(path), bytes);
    assertStrictEquals(await cache.has(digest, bytes.length), true);
    assertStrictEquals(await cache.has(digest, bytes.length + 1), false);
    assertDeepEquals(await ingestFiles(dir), []);
    assertDeepEquals(await Array.fromAsync(cache.entries()), [{ digest, size: 6, path }]);
  }));

Deno.test("sha512 blobs are verified with sha512", () =>
  withCache(async (cache, dir) => {
    const bytes = randomBytes(1000);
    const digest = digestOf(bytes, "sha512");
    assertMatch(digest, /^sha512:[a-f0-9]{128}$/);
    const path = await cache.put(digest, bytes);
    assertStrictEquals(path, join(dir, "blobs", "sha512", digest.slice(7)));
    await assertRejects(cache.put(digestOf(randomBytes(10), "sha512"), bytes), BlobVerificationError);
  }));

Deno.test("a digest mismatch leaves neither a blob nor a partial file", () =>
  withCache(async (cache, dir) => {
    const bytes = randomBytes(4096);
    const wrong = digestOf(randomBytes(4096));
    await assertRejects(cache.put(wrong, bytes), (error: Error) => {
      assert(error instanceof BlobVerificationError);
      assertMatch(error.message, /^digest mismatch: expected sha256:[a-f0-9]{64}, got sha256:/);
      return true;
    });
    assertStrictEquals(exists(cache.path(wrong)), false);
    assertDeepEquals(await ingestFiles(dir), []);
  }));

Deno.test("more bytes than the size is an error, and the partial file goes", () =>
  withCache(async (cache, dir) => {
    const bytes = randomBytes(100);
    const ingest = (await cache.ingest(digestOf(bytes), 99))!;
    await assertRejects(ingest.write(bytes), /received more than the expected 99 bytes/);
    assertDeepEquals(await ingestFiles(dir), []);
  }));

Deno.test("a cut ingest resumes from its partial file, hashing what is there", () =>
  withCache(async (cache, dir) => {
    const bytes = randomBytes(3 << 20);
    const digest = digestOf(bytes);
    const first = (await cache.ingest(digest, bytes.length))!;
    assertStrictEquals(first.resumedFrom, 0);
    await first.write(bytes.subarray(0, 1_234_567));
    first.close(); // the connection was cut: keep what arrived
    assertStrictEquals(await cache.has(digest), false);
    assertDeepEquals(await ingestFiles(dir), [`sha256-${digest.slice(7)}.partial`]);

    const second = (await cache.ingest(digest, bytes.length))!;
    assertStrictEquals(second.resumedFrom, 1_234_567);
    assertStrictEquals(second.offset, 1_234_567);
    await second.write(bytes.subarray(1_234_567));
    await assertRejects(second.write(new Uint8Array(1)), BlobVerificationError);
  }));

Deno.test("a resumed ingest commits the whole blob", () =>
  withCache(async (cache, dir) => {
    const bytes = randomBytes(200_000);
    const digest = digestOf(bytes);
    const first = (await cache.ingest(digest, bytes.length))!;
    await first.write(bytes.subarray(0, 70_000));
    first.close();
    const second = (await cache.ingest(digest, bytes.length))!;
    await second.write(bytes.subarray(70_000));
    const path = await second.commit();
    assertDeepEquals(await Deno.readFile(path), bytes);
    assertDeepEquals(await ingestFiles(dir), []);
    assertStrictEquals(await cache.ingest(digest, bytes.length), undefined, "cached: nothing to ingest");
  }));

Deno.test("a corrupted partial file fails verification and is removed", () =>
  withCache(async (cache, dir) => {
    const bytes = randomBytes(50_000);
    const digest = digestOf(bytes);
    await Deno.mkdir(join(dir, "ingest"), { recursive: true });
    const bad = bytes.slice(0, 20_000);
    bad[100]! ^= 0xff;
    await Deno.writeFile(join(dir, "ingest", `sha256-${digest.slice(7)}.partial`), bad);
    const ingest = (await cache.ingest(digest, bytes.length))!;
    assertStrictEquals(ingest.resumedFrom, 20_000);
    await ingest.write(bytes.subarray(20_000));
    await assertRejects(ingest.commit(), BlobVerificationError);
    assertStrictEquals(await cache.has(digest), false);
    assertDeepEquals(await ingestFiles(dir), []);
  }));

Deno.test("a partial file longer than the blob is started over", () =>
  withCache(async (cache, dir) => {
    const bytes = randomBytes(1000);
    const digest = digestOf(bytes);
    await Deno.mkdir(join(dir, "ingest"), { recursive: true });
    await Deno.writeFile(join(dir, "ingest", `sha256-${digest.slice(7)}.partial`), randomBytes(2000));
    const ingest = (await cache.ingest(digest, bytes.length))!;
    assertStrictEquals(ingest.offset, 0);
    await ingest.write(bytes);
    await ingest.commit();
    assertStrictEquals(await cache.has(digest, 1000), true);
  }));

Deno.test("two writers of one blob take turns; the second finds it done", () =>
  withCache(async (cache) => {
    const bytes = randomBytes(10_000);
    const digest = digestOf(bytes);
    const first = (await cache.ingest(digest, bytes.length))!;
    let secondDone = false;
    const second = cache.ingest(digest, bytes.length).then((ingest) => {
      secondDone = true;
      return ingest;
    });
    await sleep(100);
    assertStrictEquals(secondDone, false, "the second waits for the lock");
    await first.write(bytes);
    await first.commit();
    assertStrictEquals(await second, undefined);
  }));

Deno.test("a digest that is not one cannot name a path", () =>
  withCache(async (cache) => {
    assertThrows(() => cache.path("sha256:../../../etc/passwd"), /invalid digest/);
    await assertRejects(cache.ingest("sha256:" + "A".repeat(64), 1), /lower-case hex/);
  }));
