/**
 * An engine's view of start-up: wall time of `podman run --rm --network none
 * IMAGE /bin/true` with gcr as podman's OCI runtime against the same with
 * runc, in one podman environment (tests/oci/podman_env.ts: its own storage, the
 * busybox image loaded by podman load).
 *
 *   deno run -A bench/podman_run.ts [--runs N] [--warmup N] [--baseline DIR] [--json]
 *
 * `--baseline DIR`: another checkout's gcr as a third runtime in the same rounds.
 *
 * Rounds are interleaved (gcr, runc, then runc, gcr, …) so drift falls on
 * both alike; warm-up rounds are discarded. Every run must exit 0. Must run
 * as root. Reported as the ratio of medians, gcr / runc: podman's own work
 * (conmon, storage, the cleanup process) is in both.
 *
 * @module
 */
import { podmanEnv } from "../tests/oci/podman_env.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

function option(name: string, fallback: number): number {
  const at = Deno.args.indexOf(name);
  if (at === -1) return fallback;
  const value = Number(Deno.args[at + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} takes a whole number`);
  return value;
}

const runs = option("--runs", 20);
const warmup = option("--warmup", 3);
const json = Deno.args.includes("--json");
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!;

const baselineAt = Deno.args.indexOf("--baseline");
const baseline = baselineAt === -1 ? undefined : Deno.args[baselineAt + 1];
const runtimes: Record<string, string> = {
  gcr: `${REPO}/gcr`,
  runc: "/usr/sbin/runc",
  ...(baseline ? { baseline: `${baseline}/gcr` } : {}),
};
const names = Object.keys(runtimes);
const env = await podmanEnv({ runtime: runtimes.runc });
const samples: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
try {
  for (let round = 0; round < warmup + runs; round++) {
    // Rotated each round, so drift falls on every runtime alike.
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      const started = performance.now();
      const result = await env.podman(["run", "--rm", "--network", "none", env.image, "/bin/true"], {
        runtime: runtimes[name],
      });
      const took = performance.now() - started;
      if (result.code !== 0) throw new Error(`podman run with ${name} failed (${result.code}): ${result.stderr}`);
      if (round >= warmup) samples[name]!.push(took);
    }
  }
} finally {
  await env.cleanup();
}
const summary = Object.fromEntries(
  Object.entries(samples).map(([name, xs]) => [name, {
    median_ms: +median(xs).toFixed(1),
    p10_ms: +percentile(xs, 0.1).toFixed(1),
    p90_ms: +percentile(xs, 0.9).toFixed(1),
    runs: xs.length,
  }]),
) as Record<string, { median_ms: number; p10_ms: number; p90_ms: number; runs: number }>;
const ratio = +(summary.gcr!.median_ms / summary.runc!.median_ms).toFixed(2);
const baselineRatio = summary.baseline ? +(summary.baseline.median_ms / summary.runc!.median_ms).toFixed(2) : undefined;
if (json) {
  console.log(
    JSON.stringify({ summary, ratio_gcr_over_runc: ratio, ratio_baseline_over_runc: baselineRatio }, null, 2),
  );
} else {
  console.log(`podman run --rm --network none busybox /bin/true, ${runs} runs each (after ${warmup} warm-up rounds)`);
  console.log("runtime  median ms    p10    p90");
  for (const [name, s] of Object.entries(summary)) {
    console.log(
      `${name.padEnd(8)} ${String(s.median_ms).padStart(9)} ${String(s.p10_ms).padStart(6)} ${
        String(s.p90_ms).padStart(6)
      }`,
    );
  }
  console.log(`gcr / runc: ${ratio}  (target ≤ 1.2: ${ratio <= 1.2 ? "met" : "NOT met"})`);
  if (baselineRatio !== undefined) console.log(`baseline / runc: ${baselineRatio}`);
}
