/**
 * Pull + extract benchmark: the Debian image (one gzip layer, debootstrap
 * minbase bookworm) from Debian's docker-registry on loopback
 * (tests/registry/fixtures.ts), three ways, in interleaved rounds:
 *
 *   gcr pull            ./gcr pull -q into a fresh folder, with a fresh blob cache
 *   skopeo + umoci      skopeo copy docker://… oci:<dir>, then umoci unpack
 *   curl | tar -xz      the layer blob straight into tar: the floor
 *
 * Each contender is a whole process tree, timed wall clock from spawn to
 * exit; outputs and caches are removed (and `sync`ed) untimed between runs.
 *
 *   deno run -A bench/pull_extract.ts [rounds=5] [work-dir=/var/tmp/gcr-bench-pull] [baseline]
 *
 * `baseline` is another gcr checkout (e.g. `git archive` of the commit
 * before a change), timed in the same rounds as "gcr pull (baseline)".
 *
 * @module
 */
import { pushImage, startRegistry } from "../tests/registry/fixtures.ts";

const rounds = Number(Deno.args[0] ?? 5);
const work = Deno.args[1] ?? "/var/tmp/gcr-bench-pull";
const repo = new URL("..", import.meta.url).pathname.replace(/\/+$/, "");
const baseline = Deno.args[2];

async function sh(command: string, args: string[], env?: Record<string, string>): Promise<void> {
  const out = await new Deno.Command(command, { args, env, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

async function clean(...paths: string[]): Promise<void> {
  for (const path of paths) await Deno.remove(path, { recursive: true }).catch(() => {});
  await sh("sync", []);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** The 1-minute load average: other work on the machine skews every contender. */
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];

await Deno.mkdir(work, { recursive: true });
const registry = await startRegistry();
try {
  const pushed = await pushImage(registry, "debian", "debian");
  const manifest = JSON.parse(
    await (await fetch(`http://${registry.url}/v2/debian/manifests/latest`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    })).text(),
  );
  const layer = manifest.layers[0];
  const blobUrl = `http://${registry.url}/v2/debian/blobs/${layer.digest}`;

  const gcrPull = (checkout: string) => () =>
    sh(`${checkout}/gcr`, ["pull", "-q", "--rootfs-dir", `${work}/gcr`, pushed.ref], { GCR_CACHE: `${work}/cache` });
  const contenders: Record<string, () => Promise<void>> = {
    "gcr pull": gcrPull(repo),
    ...(baseline ? { "gcr pull (baseline)": gcrPull(baseline) } : {}),
    "skopeo copy + umoci unpack": async () => {
      await sh("skopeo", [
        "--insecure-policy",
        "copy",
        "-q",
        "--src-tls-verify=false",
        `docker://${pushed.ref}`,
        `oci:${work}/layout:latest`,
      ]);
      await sh("umoci", ["unpack", "--image", `${work}/layout:latest`, `${work}/bundle`]);
    },
    "curl \\| tar -xz": async () => {
      await Deno.mkdir(`${work}/tar`);
      await sh("sh", ["-c", 'curl -s "$1" | tar -xz -C "$2"', "sh", blobUrl, `${work}/tar`]);
    },
  };
  const loadBefore = load();
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  // One untimed warm-up of each: page cache, registry, Deno's module cache (and the gcr bundle).
  for (const [name, run] of Object.entries(contenders)) {
    await clean(`${work}/gcr`, `${work}/cache`, `${work}/layout`, `${work}/bundle`, `${work}/tar`);
    await run().catch((error) => {
      throw new Error(`${name}: ${error.message}`);
    });
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(contenders)) {
      await clean(`${work}/gcr`, `${work}/cache`, `${work}/layout`, `${work}/bundle`, `${work}/tar`);
      const start = performance.now();
      await run();
      times[name]!.push(performance.now() - start);
    }
  }
  await clean(`${work}/gcr`, `${work}/cache`, `${work}/layout`, `${work}/bundle`, `${work}/tar`);

  const gcr = median(times["gcr pull"]!);
  console.log(
    `debian image: one layer of ${(layer.size / 1e6).toFixed(1)} MB gzip, from docker-registry on loopback; ` +
      `${rounds} interleaved rounds, median wall time; load average ${loadBefore} before, ${load()} after`,
  );
  console.log("");
  console.log("| contender | median | gcr pull ÷ this | gcr pull − this | all rounds (s) |");
  console.log("| --- | ---: | ---: | ---: | --- |");
  for (const [name, xs] of Object.entries(times)) {
    const m = median(xs);
    const difference = (gcr - m) / 1000;
    console.log(
      `| ${name} | ${(m / 1000).toFixed(2)} s | ${(gcr / m).toFixed(2)} | ${difference > 0 ? "+" : ""}${
        difference.toFixed(2)
      } s | ${xs.map((x) => (x / 1000).toFixed(2)).join(" ")} |`,
    );
  }
} finally {
  await registry.stop();
}
