/**
 * The OCI verbs engines call for every container, each timed on its own:
 * `create`, `start` (of a created container), `state`, `kill` (SIGCONT: the
 * container goes on) and `delete` (of a stopped one), with gcr and with
 * runc, beside Deno's hello-world, in interleaved rounds. What is not the
 * verb (the kill that stops it, the wait for it to stop) runs untimed around
 * it. Issue 15's target: start, state, kill and delete each within
 * deno-hello + 5 ms; create has none of its own (podman's 1.2x covers it).
 * gcr's start of a created container without hooks and its delete of a
 * stopped one start no Deno (./gcr runs what create left:
 * commands/start_plan.ts, commands/delete_plan.ts), so their figures are
 * the launcher's (start's includes the container's exec of its command).
 *
 *   deno run -A bench/oci_verbs.ts [--runs N] [--baseline DIR] [--json]
 *
 * `--baseline DIR`: another checkout of gcr, timed in the same rounds.
 *
 * Must run as root (runc needs it). The bundle is busybox `sleep 600`
 * (gcr's own busybox image), with `runc spec`'s config.
 *
 * @module
 */
const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const GCR = `${REPO}/gcr`;
const ROOTFS = `${Deno.env.get("GCR_TEST_CACHE") ?? "/var/tmp/gcr-test"}/rootfs/busybox`;
const TARGET_OVER_DENO_MS = 5;

const at = Deno.args.indexOf("--runs");
const runs = at === -1 ? 20 : Number(Deno.args[at + 1]);
const json = Deno.args.includes("--json");
const baselineAt = Deno.args.indexOf("--baseline");
const baseline = baselineAt === -1 ? undefined : Deno.args[baselineAt + 1];

async function must(program: string, args: string[]): Promise<void> {
  const result = await new Deno.Command(program, { args, stdout: "null", stderr: "piped" }).output();
  if (!result.success) throw new Error(`${program} ${args.join(" ")}: ${new TextDecoder().decode(result.stderr)}`);
}

async function timed(program: string, args: string[]): Promise<number> {
  const started = performance.now();
  await must(program, args);
  return performance.now() - started;
}

const work = Deno.makeTempDirSync({ prefix: "gcr-bench-verbs-" });
const hello = `${work}/hello.ts`;
Deno.writeTextFileSync(hello, 'console.log("hello");\n');
const bundle = `${work}/bundle`;
Deno.mkdirSync(bundle);
await must("cp", ["-a", ROOTFS, `${bundle}/rootfs`]);
await must("sh", ["-c", `cd ${bundle} && runc spec`]);
const config = JSON.parse(Deno.readTextFileSync(`${bundle}/config.json`));
config.process.terminal = false;
config.process.args = ["sleep", "600"];
Deno.writeTextFileSync(`${bundle}/config.json`, JSON.stringify(config));

const runtimes: Record<string, readonly string[]> = {
  gcr: [GCR, "--root", `${work}/gcr`],
  runc: ["runc", "--root", `${work}/runc`],
  ...(baseline ? { baseline: [`${baseline}/gcr`, "--root", `${work}/baseline`] } : {}),
};
type Runtime = string;
const verbs = ["create", "start", "state", "kill", "delete"] as const;
const samples: Record<string, number[]> = { "deno-hello": [] };
for (const r of Object.keys(runtimes)) for (const v of verbs) samples[`${r} ${v}`] = [];

/** One runtime's round: each verb timed once, on a container of its own. */
async function round(runtime: Runtime, n: number, keep: boolean): Promise<void> {
  const [program, ...root] = runtimes[runtime]!;
  const rt = (args: string[]) => [...root, ...args];
  const id = `b${n}-${runtime}-${Deno.pid}`;
  // The container's stdio is create's: not a pipe, which it would hold open for as long as it runs.
  const record = (verb: string, ms: number) => keep && samples[`${runtime} ${verb}`]!.push(ms);
  const began = performance.now();
  const created = await new Deno.Command(program!, {
    args: rt(["create", "--bundle", bundle, id]),
    stdout: "null",
    stderr: "null",
  })
    .output();
  if (!created.success) throw new Error(`${runtime} create failed (${created.code})`);
  record("create", performance.now() - began);
  record("start", await timed(program!, rt(["start", id])));
  record("state", await timed(program!, rt(["state", id])));
  record("kill", await timed(program!, rt(["kill", id, "CONT"])));
  await must(program!, rt(["kill", id, "KILL"]));
  // delete needs it stopped: wait until state says so.
  for (let i = 0; i < 200; i++) {
    const out = await new Deno.Command(program!, { args: rt(["state", id]), stdout: "piped", stderr: "null" }).output();
    if (new TextDecoder().decode(out.stdout).includes('"stopped"')) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  record("delete", await timed(program!, rt(["delete", id])));
}

try {
  const warmup = 3;
  for (let n = 0; n < warmup + runs; n++) {
    const keep = n >= warmup;
    const names = Object.keys(runtimes);
    const order = names.map((_, i) => names[(i + n) % names.length]!);
    const ms = await timed("deno", ["run", "-A", "--cached-only", "--quiet", hello]);
    if (keep) samples["deno-hello"]!.push(ms);
    for (const runtime of order) await round(runtime, n, keep);
  }
} finally {
  Deno.removeSync(work, { recursive: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const summary = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, +median(xs).toFixed(1)]));
if (json) console.log(JSON.stringify({ runs, load, median_ms: summary }, null, 2));
else {
  const deno = summary["deno-hello"]!;
  console.log(`${runs} interleaved rounds, load ${load}; median ms\n`);
  console.log(`deno-hello       ${deno.toFixed(1).padStart(6)}`);
  for (const v of verbs) {
    const g = summary[`gcr ${v}`]!, r = summary[`runc ${v}`]!;
    const b = summary[`baseline ${v}`];
    const over = g - deno;
    // create has no target of its own: podman's ratio is what it weighs on.
    const verdict = v === "create"
      ? `(no target; gcr − runc ${(g - r).toFixed(1)} ms)`
      : `(target ≤ ${TARGET_OVER_DENO_MS}: ${over <= TARGET_OVER_DENO_MS ? "met" : "NOT met"})`;
    console.log(
      `${v.padEnd(7)} gcr ${g.toFixed(1).padStart(6)}  runc ${r.toFixed(1).padStart(6)}  ` +
        (b !== undefined ? `baseline ${b.toFixed(1).padStart(6)}  ` : "") +
        `gcr − deno-hello ${over.toFixed(1).padStart(5)} ms ${verdict}`,
    );
  }
}
