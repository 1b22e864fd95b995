/**
 * Layer media types and their decompression, as streams.
 *
 * @module
 */
import { createZstdDecompress } from "node:zlib";
import { Duplex } from "node:stream";

export type Compression = "none" | "gzip" | "zstd";

/** How a layer of `mediaType` is compressed; throws for a type that is not a layer. */
export function layerCompression(mediaType: string): Compression {
  switch (mediaType) {
    case "tar":
    case "application/vnd.oci.image.layer.v1.tar":
    case "application/vnd.oci.image.layer.nondistributable.v1.tar":
      return "none";
    case "tar+gzip":
    case "application/vnd.oci.image.layer.v1.tar+gzip":
    case "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
    case "application/vnd.docker.image.rootfs.diff.tar.gzip":
    case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
      return "gzip";
    case "tar+zstd":
    case "application/vnd.oci.image.layer.v1.tar+zstd":
    case "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
      return "zstd";
    default:
      throw new Error(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  }
}

/** The tar stream inside a layer blob, decompressed on this thread. */
export function decompressLayer(layer: ReadableStream<Uint8Array>, mediaType: string): ReadableStream<Uint8Array> {
  switch (layerCompression(mediaType)) {
    case "none":
      return layer;
    case "gzip":
      return layer.pipeThrough(new DecompressionStream("gzip") as ReadableWritablePair<Uint8Array, Uint8Array>);
    case "zstd":
      // DecompressionStream has no zstd; node:zlib's does (Deno 2.9).
      return layer.pipeThrough(
        Duplex.toWeb(createZstdDecompress()) as unknown as ReadableWritablePair<Uint8Array, Uint8Array>,
      );
  }
}

/**
 * The tar stream inside a layer blob, decompressed on a worker thread
 * (image/decompress_worker.ts) so that inflating overlaps with extracting.
 * Uncompressed layers, and all layers when `useWorker` is false, stay on
 * this thread. Call `close` when done: it ends
 * the worker.
 */
export async function decompressInWorker(
  layer: ReadableStream<Uint8Array>,
  mediaType: string,
  useWorker: boolean,
): Promise<{ tar: ReadableStream<Uint8Array>; close(): void }> {
  if (layerCompression(mediaType) === "none" || !useWorker) {
    return { tar: decompressLayer(layer, mediaType), close() {} };
  }
  const worker = new Worker(new URL("./decompress_worker.ts", import.meta.url), { type: "module" });
  try {
    const tar = await new Promise<ReadableStream<Uint8Array>>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`decompression worker failed: ${event.message}`));
      };
      worker.postMessage({ stream: layer, mediaType }, [layer]);
    });
    return { tar, close: () => worker.terminate() };
  } catch (error) {
    worker.terminate();
    throw error;
  }
}
