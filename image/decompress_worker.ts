/**
 * Worker side of {@link decompressInWorker} (image/apply_layer.ts): receives
 * the compressed layer stream, sends back the decompressed one. Both are
 * transferred streams, so backpressure crosses the thread boundary (the
 * worker stays about one chunk ahead of the extraction) and the layer is
 * never buffered whole. Inflating here overlaps with the file system work on
 * the main thread, as `gzip -d | tar -x` overlaps two processes. Opt-in
 * (`inflateInWorker`): see ApplyOptions for the measurement.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { decompressLayer } from "./decompress.ts";

self.onmessage = (event: MessageEvent<{ stream: ReadableStream<Uint8Array>; mediaType: string }>) => {
  const tar = decompressLayer(event.data.stream, event.data.mediaType);
  self.postMessage(tar, [tar]);
};
