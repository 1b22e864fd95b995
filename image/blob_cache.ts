/**
 * A content-addressed blob store: `${dir}/blobs/<algorithm>/<hex>`, the
 * layout of an OCI image layout's `blobs/`.
 *
 * Nothing becomes a blob before its size and digest are verified: bytes go
 * to `${dir}/ingest/<algorithm>-<hex>.partial`, hashed as they are written,
 * and the file is renamed into `blobs/` only when the digest matches. A
 * partial file that was cut off stays for the next attempt to resume; one
 * that fails verification is deleted. An ingest file is locked (flock) while
 * written, so two pulls of the same blob do not interleave.
 *
 * ```ts
 * const cache = new BlobCache("/var/cache/gcr");
 * const ingest = await cache.ingest(digest, size);
 * if (ingest !== undefined) {
 *   for await (const chunk of body) await ingest.write(chunk);
 *   await ingest.commit(); // throws when size or digest differ
 * }
 * const path = cache.path(digest);
 * ```
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { join } from "node:path";
import { validateDigest } from "./reference.ts";

/** The bytes did not match their descriptor: wrong size, or wrong digest. Retrying the same source will not help. */
export class BlobVerificationError extends Error {
  override name = "BlobVerificationError";
}

function split(digest: string): [algorithm: string, hex: string] {
  validateDigest(digest);
  const colon = digest.indexOf(":");
  return [digest.slice(0, colon), digest.slice(colon + 1)];
}

/** The digest (`sha256:…`) of `bytes` with `algorithm` (`sha256` or `sha512`). */
export function digestOf(bytes: Uint8Array, algorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** The algorithm of a valid digest. */
export function digestAlgorithm(digest: string): string {
  return split(digest)[0];
}

/** Whether a file exists and, when `size` is given, has that size. */
async function isFileOfSize(path: string, size?: number): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && (size === undefined || info.size === size);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

const READ_CHUNK = 1 << 20;

/** A blob being written: bytes are hashed as they arrive; `commit` verifies and publishes. */
export class Ingest {
  readonly digest: string;
  readonly size: number;
  /** Where the bytes go until verified. */
  readonly partialPath: string;
  /** How many bytes the partial file held when opened: a resumed download starts there. */
  readonly resumedFrom: number;
  #offset: number;
  #hash: Hash;
  readonly #file: Deno.FsFile;
  readonly #blobPath: string;
  #closed = false;
  #verified = false;
  #observer: ((written: number) => void) | undefined;

  /** @internal Use {@link BlobCache.ingest}. */
  constructor(
    digest: string,
    size: number,
    partialPath: string,
    blobPath: string,
    file: Deno.FsFile,
    offset: number,
    hash: Hash,
  ) {
    this.digest = digest;
    this.size = size;
    this.partialPath = partialPath;
    this.#blobPath = blobPath;
    this.#file = file;
    this.#offset = offset;
    this.resumedFrom = offset;
    this.#hash = hash;
  }

  /** Bytes written (and hashed) so far; the `Range` start when resuming. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Calls `observer` with the new {@link offset} after every write and reset
   * (a smaller offset than before means the bytes are being written again),
   * so that a reader can follow the partial file while it grows.
   */
  observe(observer: (written: number) => void): void {
    this.#observer = observer;
  }

  /** Appends `chunk`; more bytes than the descriptor's size is a verification error. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#offset + chunk.length > this.size) {
      await this.discard();
      throw new BlobVerificationError(
        `${this.digest}: received more than the expected ${this.size} bytes`,
      );
    }
    this.#hash.update(chunk);
    let written = 0;
    while (written < chunk.length) written += await this.#file.write(chunk.subarray(written));
    this.#offset += chunk.length;
    this.#observer?.(this.#offset);
  }

  /** Starts again from byte 0 (the server ignored a `Range`, or a resumed blob failed verification). */
  async reset(): Promise<void> {
    await this.#file.truncate(0);
    await this.#file.seek(0, Deno.SeekMode.Start);
    this.#offset = 0;
    this.#hash = createHash(digestAlgorithm(this.digest));
    this.#observer?.(0);
  }

  /**
   * Checks size and digest once every byte is written. On a mismatch the
   * partial file is deleted and a {@link BlobVerificationError} thrown.
   * Separate from {@link commit} so that a reader of the bytes can trust them
   * before the (slow) fdatasync.
   */
  async verify(): Promise<void> {
    if (this.#verified) return;
    if (this.#offset !== this.size) {
      throw new Error(`${this.digest}: only ${this.#offset} of ${this.size} bytes written`);
    }
    const actual = `${digestAlgorithm(this.digest)}:${this.#hash.digest("hex")}`;
    if (actual !== this.digest) {
      await this.discard();
      throw new BlobVerificationError(`digest mismatch: expected ${this.digest}, got ${actual}`);
    }
    this.#verified = true;
  }

  /**
   * Verifies (see {@link verify}) and then makes the blob durable before it
   * is published: fdatasync, then the rename to the blob's path.
   */
  async commit(): Promise<string> {
    await this.verify();
    await this.#file.syncData();
    await Deno.rename(this.partialPath, this.#blobPath);
    this.close();
    return this.#blobPath;
  }

  /** Deletes the partial file (its bytes cannot be trusted) and releases the lock. */
  async discard(): Promise<void> {
    if (this.#closed) return;
    await Deno.remove(this.partialPath).catch(() => {});
    this.close();
  }

  /** Releases the lock and keeps the partial file, for a later attempt to resume. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close(); // closing drops the flock
  }
}

/** The blob store under `dir`. */
export class BlobCache {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Where the blob with `digest` lives (whether or not it is there yet). */
  path(digest: string): string {
    const [algorithm, hex] = split(digest);
    return join(this.dir, "blobs", algorithm, hex);
  }

  #partialPath(digest: string): string {
    const [algorithm, hex] = split(digest);
    return join(this.dir, "ingest", `${algorithm}-${hex}.partial`);
  }

  /** Whether the blob is cached (and, when `size` is given, has that size). */
  has(digest: string, size?: number): Promise<boolean> {
    return isFileOfSize(this.path(digest), size);
  }

  /** Reads a cached blob into memory; refuses one larger than `maxBytes`. */
  async read(digest: string, maxBytes: number): Promise<Uint8Array> {
    const path = this.path(digest);
    const info = await Deno.stat(path);
    if (info.size > maxBytes) throw new Error(`${digest} is ${info.size} bytes, more than the limit of ${maxBytes}`);
    return await Deno.readFile(path);
  }

  /** Stores `bytes` (already in memory, such as a manifest) under `digest`, after checking it. */
  async put(digest: string, bytes: Uint8Array): Promise<string> {
    const ingest = await this.ingest(digest, bytes.length);
    if (ingest === undefined) return this.path(digest);
    try {
      if (ingest.offset > 0) await ingest.reset();
      await ingest.write(bytes);
      return await ingest.commit();
    } finally {
      ingest.close();
    }
  }

  /**
   * Opens (creating or resuming) the partial file of a blob, locked for this
   * process. Returns `undefined` when the blob is already cached, also when
   * another process finished it while this one waited for the lock.
   */
  async ingest(digest: string, size: number): Promise<Ingest | undefined> {
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`${digest}: invalid size ${size}`);
    const blobPath = this.path(digest);
    if (await isFileOfSize(blobPath, size)) return undefined;
    const partialPath = this.#partialPath(digest);
    await Deno.mkdir(join(this.dir, "ingest"), { recursive: true });
    await Deno.mkdir(join(blobPath, ".."), { recursive: true });
    const file = await Deno.open(partialPath, { read: true, write: true, create: true, mode: 0o644 });
    try {
      await file.lock(true);
      if (await isFileOfSize(blobPath, size)) {
        // Another process committed it while this one waited; its partial file was renamed away.
        const [mine, current] = await Promise.all([file.stat(), Deno.stat(partialPath).catch(() => undefined)]);
        if (current !== undefined && current.ino === mine.ino && current.size === 0) {
          await Deno.remove(partialPath).catch(() => {});
        }
        file.close();
        return undefined;
      }
      const hash = createHash(digestAlgorithm(digest));
      let offset = (await file.stat()).size;
      if (offset > size) {
        await file.truncate(0);
        offset = 0;
      }
      // Hash what an earlier attempt left, so that the digest covers the whole blob.
      const buffer = new Uint8Array(READ_CHUNK);
      let hashed = 0;
      while (hashed < offset) {
        const n = await file.read(buffer.subarray(0, Math.min(READ_CHUNK, offset - hashed)));
        if (n === null) break;
        hash.update(buffer.subarray(0, n));
        hashed += n;
      }
      if (hashed !== offset) {
        // Shorter than its size said: start over rather than trust it.
        await file.truncate(0);
        await file.seek(0, Deno.SeekMode.Start);
        return new Ingest(digest, size, partialPath, blobPath, file, 0, createHash(digestAlgorithm(digest)));
      }
      await file.seek(offset, Deno.SeekMode.Start);
      return new Ingest(digest, size, partialPath, blobPath, file, offset, hash);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** Every cached blob with its size, for `gcr images`. */
  async *entries(): AsyncGenerator<{ digest: string; size: number; path: string }> {
    for (const algorithm of ["sha256", "sha512"]) {
      const dir = join(this.dir, "blobs", algorithm);
      try {
        for await (const entry of Deno.readDir(dir)) {
          if (!entry.isFile) continue;
          const digest = `${algorithm}:${entry.name}`;
          try {
            validateDigest(digest);
          } catch {
            continue;
          }
          const path = join(dir, entry.name);
          yield { digest, size: (await Deno.stat(path)).size, path };
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  }
}
