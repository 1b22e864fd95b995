/**
 * A blob's bytes for a reader that keeps pace with its download, so that a
 * layer is extracted while it is still arriving (as `curl | tar -xz` does)
 * instead of after it has been fetched and fsynced.
 *
 * The reader follows the blob's partial file in the cache rather than taking
 * the HTTP body itself: the download keeps its resumes and retries, runs at
 * the network's pace (the file is the buffer, so memory stays bounded
 * whatever the extraction's pace), and its fdatasync at the end runs while
 * the extraction is still busy. The stream ends only once the whole blob has
 * been verified against its digest, and fails with the download's error
 * otherwise, so an extraction that completes has applied exactly the bytes
 * the digest names.
 *
 * ```ts
 * const feed = new BlobFeed(descriptor.size);
 * const download = client.downloadBlob(repository, descriptor, cache, report, feed);
 * await applyLayer(temporary, feed.readable(), options); // fails if the digest does not match
 * ```
 *
 * @module
 */
import type { Ingest } from "./blob_cache.ts";

/**
 * The download started the blob over after the reader had consumed part of
 * it (a resumed partial file that failed verification, a server that
 * ignored `Range`): what was extracted cannot be trusted, so the caller
 * starts the extraction again from the cached blob once it is complete.
 */
export class BlobFeedRestartedError extends Error {
  override name = "BlobFeedRestartedError";
}

/** Reads of this size keep the per-chunk cost of the decompressor and tar reader low. */
const READ_CHUNK = 1 << 20;

/** One blob's bytes as they are written to the cache, for one reader. */
export class BlobFeed {
  readonly size: number;
  /** A read handle of the file being written (or of the cached blob). */
  #file: Deno.FsFile | undefined;
  /** Bytes of #file that are written; the reader does not read past them. */
  #written = 0;
  /** Bytes the reader has handed on. */
  #consumed = 0;
  /** Changes whenever the bytes under the reader are replaced. */
  #generation = 0;
  #verified = false;
  #error: unknown;
  #wake: (() => void) | undefined;
  #reading = false;
  #closed = false;

  constructor(size: number) {
    this.size = size;
  }

  /**
   * The download side: follow `ingest`'s partial file (opened here, while
   * the ingest's lock keeps it from being renamed). A later call, for a new
   * ingest of the same blob, replaces the bytes under the reader.
   */
  async follow(ingest: Ingest): Promise<void> {
    const file = await Deno.open(ingest.partialPath, { read: true });
    this.#replace(file, ingest.offset);
    ingest.observe((written) => {
      if (written < this.#written) this.#replace(this.#file, written);
      this.#written = written;
      this.#signal();
    });
  }

  /** The download side: the blob was found complete in the cache at `path`. */
  async cached(path: string): Promise<void> {
    this.#replace(await Deno.open(path, { read: true }), this.size);
    this.verified();
  }

  /** The download side: every byte is written and matches the digest. */
  verified(): void {
    this.#verified = true;
    this.#signal();
  }

  /** The download side: it failed; the reader fails with the same error. */
  fail(error: unknown): void {
    this.#error ??= error;
    this.#signal();
  }

  /** Closes the read handle (call when the pull is over, whether or not the blob was read). */
  close(): void {
    this.#closed = true;
    this.#closeFile();
  }

  /** The blob's bytes from the start; errors if the download fails, ends when it is verified. Read once. */
  readable(): ReadableStream<Uint8Array> {
    if (this.#reading) throw new Error("a blob feed is read once");
    this.#reading = true;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const chunk = await this.#next();
          if (chunk === undefined) {
            this.#closeFile();
            controller.close();
          } else {
            controller.enqueue(chunk);
          }
        } catch (error) {
          this.#closeFile();
          throw error;
        }
      },
      cancel: () => this.#closeFile(),
    }, { highWaterMark: 0 }); // read only when the consumer asks: the file holds the backlog
  }

  /** The next bytes, or undefined at the verified end. */
  async #next(): Promise<Uint8Array | undefined> {
    for (;;) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#consumed < this.#written && this.#file !== undefined) {
        const generation = this.#generation;
        const buffer = new Uint8Array(Math.min(READ_CHUNK, this.#written - this.#consumed));
        let n: number | null;
        try {
          // Positioned each time: a read that raced a replacement moved the offset for nothing.
          await this.#file.seek(this.#consumed, Deno.SeekMode.Start);
          n = await this.#file.read(buffer);
        } catch (error) {
          if (generation !== this.#generation) continue; // the handle was replaced under the read
          throw error;
        }
        if (generation !== this.#generation) continue; // possibly old bytes: never hand them on
        if (n === null || n === 0) throw new Error(`the partial file ended at ${this.#consumed} bytes`);
        this.#consumed += n;
        return buffer.subarray(0, n);
      }
      if (this.#verified && this.#consumed === this.size) return undefined;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /** New bytes under the reader: fine if it has read none, a restart otherwise. */
  #replace(file: Deno.FsFile | undefined, written: number): void {
    if (this.#closed) {
      file?.close(); // a download that was still stopping when the pull ended
      return;
    }
    if (file !== this.#file) this.#closeFile();
    this.#file = file;
    this.#written = written;
    this.#generation++;
    if (this.#consumed > 0) {
      this.fail(new BlobFeedRestartedError("the download of the blob started over while it was being extracted"));
    }
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #closeFile(): void {
    try {
      this.#file?.close();
    } catch {
      // already closed
    }
    this.#file = undefined;
  }
}
