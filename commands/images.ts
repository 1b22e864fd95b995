/**
 * `gcr images`: the rootfs folders (images) and the blob cache, with sizes.
 *
 * @module
 */

import { rootfsDir } from "../image/rootfs.ts";
import { UsageError } from "./usage.ts";
import { formatImages, listImages } from "../image/listing.ts";
import { defaultCacheDir } from "../image/pull.ts";

/** `gcr images [--rootfs-dir DIR]`. */
export async function imagesCommand(args: readonly string[]): Promise<number> {
  let dir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const name = (eq >= 0 ? arg.slice(0, eq) : arg).replace(/^--?/, "");
    if (name !== "rootfs-dir" || !arg.startsWith("-")) throw new UsageError(`unknown argument ${arg}`);
    dir = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (dir === undefined) throw new UsageError(`option ${arg} needs a value`);
  }
  console.log(formatImages(await listImages(rootfsDir(dir), defaultCacheDir())));
  return 0;
}
