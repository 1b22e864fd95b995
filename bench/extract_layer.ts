/**
 * Extraction benchmark: applyLayer against `tar -xzf` on the same gzip
 * layer, alternating, each into a fresh folder that is removed (and synced)
 * untimed between rounds. Prints the median of each.
 *
 *   deno run -A bench/extract_layer.ts [layer.tar.gz] [rounds] [work-dir]
 *
 * Without a layer it makes one from /var/tmp/gcr-test/rootfs/debian (or
 * /var/tmp/gcr-test/debian) with GNU tar. The work dir defaults to
 * /var/tmp/gcr-bench; put it on a tmpfs (/dev/shm/…) to take the disk out.
 *
 * @module
 */
import { applyLayer } from "../image/apply_layer.ts";

const work = Deno.args[2] ?? "/var/tmp/gcr-bench";
const rounds = Number(Deno.args[1] ?? 5);
await Deno.mkdir(work, { recursive: true });

async function sh(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, { args, stdout: "null", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${command} ${args.join(" ")} failed`);
}

let layer = Deno.args[0];
if (!layer) {
  const source = ["/var/tmp/gcr-test/rootfs/debian", "/var/tmp/gcr-test/debian"].find((p) => {
    try {
      return Deno.statSync(p).isDirectory;
    } catch {
      return false;
    }
  });
  if (!source) throw new Error("no Debian tree to make a layer from: pass a layer.tar.gz");
  layer = `${work}/layer.tar.gz`;
  await sh("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", source, "-czf", layer, "."]);
}
const size = Deno.statSync(layer).size;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const times: Record<string, number[]> = { "gcr applyLayer": [], "gcr, inflate on main thread": [], "tar -xzf": [] };
const out = `${work}/out`;

for (let round = 0; round < rounds; round++) {
  for (const name of Object.keys(times)) {
    await Deno.remove(out, { recursive: true }).catch(() => {});
    await sh("sync", []);
    await Deno.mkdir(out);
    const start = performance.now();
    if (name === "tar -xzf") {
      await sh("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xzf", layer, "-C", out]);
    } else {
      await applyLayer(out, (await Deno.open(layer)).readable, {
        mediaType: "tar+gzip",
        rootless: Deno.uid() !== 0,
        inflateInWorker: name === "gcr applyLayer",
      });
    }
    times[name]!.push(performance.now() - start);
  }
}
await Deno.remove(out, { recursive: true }).catch(() => {});
console.log(`layer ${layer}: ${(size / 1e6).toFixed(1)} MB compressed, ${rounds} rounds, median wall time:`);
for (const [name, xs] of Object.entries(times)) {
  console.log(
    `  ${name.padEnd(28)} ${(median(xs) / 1000).toFixed(2)} s   (all: ${
      xs.map((x) => (x / 1000).toFixed(2)).join(" ")
    })`,
  );
}
