/**
 * The tests' busybox image (podman_env's umoci-built OCI layout) as
 * docker-archives, the form `docker load` and `ctr images import` read:
 * copied by skopeo, an image per tag, some made from it by `umoci config`
 * (the CRI's pause). Built in a hidden folder of `cache` and renamed into
 * place, so a run killed midway leaves no half archive for the next.
 *
 * @module
 */
import { join } from "node:path";
import { describe } from "../fixtures.ts";
import { exists } from "../../host/files.ts";
import { must, podmanImageArchive, runWithoutBlobCache } from "../oci/podman_env.ts";

/** The layout's tag of the busybox image. */
const BUSYBOX_TAG = "gcr-busybox";

/** One archive: the image's name once loaded, its file, and the `umoci config` arguments that make it from busybox. */
export interface DockerArchive {
  readonly name: string;
  readonly file: string;
  readonly config?: readonly string[];
}

/** Builds the archives that are not in `cache` yet. */
export async function buildDockerArchives(cache: string, archives: readonly DockerArchive[]): Promise<void> {
  if (archives.every((a) => exists(a.file))) return;
  const source = await podmanImageArchive();
  Deno.mkdirSync(cache, { recursive: true, mode: 0o755 });
  const work = Deno.makeTempDirSync({ dir: cache, prefix: ".build-" });
  try {
    const layout = join(work, "layout");
    Deno.mkdirSync(layout);
    await must("tar", ["-C", layout, "-xf", source]);
    const policy = join(work, "policy.json");
    Deno.writeTextFileSync(policy, `{"default": [{"type": "insecureAcceptAnything"}]}\n`);
    for (const [index, archive] of archives.entries()) {
      let tag = BUSYBOX_TAG;
      if (archive.config) {
        tag = `made-${index}`;
        await must("umoci", ["config", "--image", `${layout}:${BUSYBOX_TAG}`, "--tag", tag, ...archive.config]);
      }
      const built = join(work, `archive-${index}.tar`);
      const copy = await runWithoutBlobCache(
        [
          "skopeo",
          "--policy",
          policy,
          "copy",
          "--quiet",
          `oci:${layout}:${tag}`,
          `docker-archive:${built}:${archive.name}`,
        ],
        { env: { TMPDIR: work }, timeoutMs: 120_000 },
      );
      if (copy.code !== 0) throw new Error(`skopeo copy failed\n${describe(copy)}`);
      Deno.chmodSync(built, 0o644);
      Deno.renameSync(built, archive.file);
    }
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
}
