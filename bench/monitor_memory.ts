/**
 * What a detached container costs outside itself: start N containers that
 * sleep, then add up the PSS (proportional set size, smaps_rollup) of every
 * process that appeared with them and is not inside a container (its PID
 * namespace is the host's), divided by N. Side by side:
 *
 *  - gcr: `gcr run -d busybox sleep 600` (its monitor is gcr-monitor);
 *  - baseline (with `--baseline DIR`, another checkout of gcr): the same;
 *  - podman + conmon + runc: `podman run -d … sleep 600`, podman's own
 *    environment (tests/oci/podman_env.ts); what stays is conmon;
 *  - podman + conmon + gcr: the same with gcr as the runtime (gcr create
 *    leaves no process of its own: the OCI verbs' cost is the engine's).
 *
 *   deno run -A bench/monitor_memory.ts [--containers N] [--baseline DIR] [--json]
 *
 * Must run as root. Target (issue 15): at most 2 MB per container for gcr.
 *
 * @module
 */
import { podmanEnv } from "../tests/oci/podman_env.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const ROOTFS_DIR = `${Deno.env.get("GCR_TEST_CACHE") ?? "/var/tmp/gcr-test"}/rootfs`;
const TARGET_KB = 2048;

function option(name: string): string | undefined {
  const at = Deno.args.indexOf(name);
  return at === -1 ? undefined : Deno.args[at + 1];
}

const containers = Number(option("--containers") ?? 20);
const baseline = option("--baseline");
const json = Deno.args.includes("--json");
const hostPidNs = Deno.readLinkSync("/proc/self/ns/pid");

/** Every process now, by pid. */
function processes(): Set<number> {
  return new Set([...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).map((e) => Number(e.name)));
}

/** PSS in kB of `pid` (0 if it has gone, or has no memory of its own: a kernel thread). */
function pss(pid: number): number {
  try {
    const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    return Number(rollup.match(/^Pss:\s+(\d+) kB$/m)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function outsideContainers(pid: number): boolean {
  try {
    return Deno.readLinkSync(`/proc/${pid}/ns/pid`) === hostPidNs;
  } catch {
    return false;
  }
}

/** Fields of /proc/<pid>/stat after the command's name: [state, ppid, pgrp, session, …]. */
function stat(pid: number): string[] {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return [];
  }
}

const parent = (pid: number) => Number(stat(pid)[1] ?? 0);
const session = (pid: number) => Number(stat(pid)[3] ?? -1);

function comm(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "?";
  }
}

interface Result {
  name: string;
  containers: number;
  pss_kb_per_container: number;
  processes: Record<string, number>;
}

/** Starts the containers with `start`, measures what appeared outside them, then `stop`s them. */
async function measure(
  name: string,
  start: (i: number) => Promise<void>,
  stop: () => Promise<void>,
): Promise<Result> {
  const before = processes();
  try {
    for (let i = 0; i < containers; i++) await start(i);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Other work on the machine starts processes too: count only those that
    // keep the containers, their ancestors that appeared with them (a
    // monitor, a shim), and whatever shares a session with those.
    const appeared = new Set([...processes()].filter((pid) => !before.has(pid)));
    const inits = [...appeared].filter((pid) => !outsideContainers(pid) && outsideContainers(parent(pid)));
    const keepers = new Set<number>();
    for (const init of inits) {
      for (let pid = parent(init); appeared.has(pid) && !keepers.has(pid); pid = parent(pid)) keepers.add(pid);
    }
    const sessions = new Set([...keepers].map(session).filter((id) => id > 0));
    const counted = [...appeared].filter((pid) =>
      outsideContainers(pid) && (keepers.has(pid) || sessions.has(session(pid)))
    );
    const counts: Record<string, number> = {};
    let total = 0;
    for (const pid of counted) {
      const kb = pss(pid);
      if (kb === 0) continue;
      total += kb;
      counts[comm(pid)] = (counts[comm(pid)] ?? 0) + 1;
    }
    return { name, containers, pss_kb_per_container: Math.round(total / containers), processes: counts };
  } finally {
    await stop();
  }
}

async function must(program: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await new Deno.Command(program, { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  if (!result.success) throw new Error(`${program} ${args.join(" ")}: ${text(result.stderr)}`);
  return text(result.stdout);
}

/** `gcr run -d` containers of one checkout, in a state folder of their own. */
function gcrContender(name: string, checkout: string): () => Promise<Result> {
  return async () => {
    const state = Deno.makeTempDirSync({ prefix: "gcr-bench-monitor-" });
    const env = { GCR_STATE: state, GCR_RUN: `${state}/run` };
    const ids: string[] = [];
    try {
      return await measure(
        name,
        async () => {
          const id = await must(
            `${checkout}/gcr`,
            ["run", "-d", "-q", "--rootfs-dir", ROOTFS_DIR, "busybox", "sleep", "600"],
            env,
          );
          ids.push(id.trim());
        },
        async () => {
          if (ids.length) await must(`${checkout}/gcr`, ["rm", "-f", ...ids], env);
        },
      );
    } finally {
      Deno.removeSync(state, { recursive: true });
    }
  };
}

/** `podman run -d` containers with `runtime`. */
function podmanContender(name: string, runtime: string): () => Promise<Result> {
  return async () => {
    const env = await podmanEnv({ runtime });
    try {
      return await measure(
        name,
        async () => {
          const result = await env.podman(["run", "-d", "--network", "none", env.image, "sleep", "600"]);
          if (result.code !== 0) throw new Error(`podman run -d with ${name}: ${result.stderr}`);
        },
        async () => {
          await env.podman(["rm", "-f", "-t", "0", "--all"]);
          // conmon and the runtime's delete finish after podman rm returns.
          await new Promise((resolve) => setTimeout(resolve, 2000));
        },
      );
    } finally {
      await env.cleanup();
    }
  };
}

const contenders = [
  gcrContender("gcr", REPO),
  ...(baseline ? [gcrContender("baseline", baseline)] : []),
  podmanContender("podman+conmon+runc", "/usr/sbin/runc"),
  podmanContender("podman+conmon+gcr", `${REPO}/gcr`),
];
const results: Result[] = [];
for (const contender of contenders) results.push(await contender());

if (json) console.log(JSON.stringify({ containers, target_kb: TARGET_KB, results }, null, 2));
else {
  console.log(`${containers} detached containers each; PSS of the processes outside them, per container\n`);
  for (const r of results) {
    const what = Object.entries(r.processes).map(([c, n]) => `${n}× ${c}`).join(", ");
    console.log(`${r.name.padEnd(22)} ${String(r.pss_kb_per_container).padStart(7)} kB   ${what}`);
  }
  const gcr = results[0]!;
  console.log(`\ngcr: ${gcr.pss_kb_per_container} kB per container (target ≤ ${TARGET_KB} kB)`);
}
