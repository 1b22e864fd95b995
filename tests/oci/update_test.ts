/**
 * `gcr update` beside `runc update` on this host's real v1 cgroups: the
 * same container made by each from the same bundle, then the same updates
 * (`--resources -` as containerd's shim sends them, runc's flags), and
 * the same files with the same values in each container's cgroup, and
 * the same limits seen from inside it. A memory limit below what the
 * container uses is refused by both with runc's words; the trace shows
 * gcr's writes.
 *
 * @module
 */
import { join } from "node:path";
import { describe, missingPrograms, named, run } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes } from "../helpers.ts";
import { both, cgroupFoldersOf, createBoth, type Json, type Oci, PATH_ENV, SKIP, withOci } from "./oci_env.ts";
import { detectCgroups } from "../../cgroup/hierarchies.ts";
import { readTextOr } from "../../host/files.ts";

const MiB = 1 << 20;
/** What v1 reads back for "no limit" (PAGE_COUNTER_MAX pages of 4 KiB). */
const UNLIMITED = "9223372036854771712";
/** The files an update changes, as `<hierarchy>/<file>`. */
const FILES = [
  "memory/memory.limit_in_bytes",
  "memory/memory.memsw.limit_in_bytes",
  "pids/pids.max",
  "cpu/cpu.shares",
  "cpu/cpu.cfs_quota_us",
] as const;

function cannotRun(): string | undefined {
  const missing = SKIP ?? missingPrograms("runc");
  if (missing) return missing;
  const host = detectCgroups();
  if (host.version === 2) return "this test reads cgroup v1 files; the host has cgroup v2 only";
  if (!host.hierarchies.some((h) => h.controllers.includes("memory"))) return "no v1 memory hierarchy";
  const memory = host.hierarchies.find((h) => h.controllers.includes("memory"))!;
  return readTextOr(`${memory.mount}/memory.memsw.limit_in_bytes`) ? undefined : "the kernel does not account swap";
}

/** Each runtime's view of its container: the files in its cgroup folders (on the host) and from inside. */
async function limitsOf(o: Oci, runcRoot: string, id: string, process: string) {
  const seen: Record<string, { host: string[]; inside: string }> = {};
  for (const runtime of ["runc", "gcr"] as const) {
    const one = (args: string[]) => runtime === "runc" ? run("runc", ["--root", runcRoot, ...args]) : o.gcr(args);
    const state: Json = JSON.parse((await one(["state", id])).stdout);
    const folders = cgroupFoldersOf(state.pid);
    const host = FILES.map((file) => {
      const [hierarchy, name] = file.split("/");
      const dir = folders.find((f) => f.startsWith(`/sys/fs/cgroup/${hierarchy}/`));
      return `${file}: ${readTextOr(`${dir}/${name}`).trim()}`;
    });
    const exec = await one(["exec", "--process", process, id]);
    assertEquals(exec.code, 0, `${runtime} exec reads the limits inside`, describe(exec));
    seen[runtime] = { host, inside: exec.stdout };
  }
  assertEquals(seen.gcr, seen.runc, "gcr's container as runc's");
  return seen.gcr!;
}

Deno.test(
  named(
    "update --resources - and runc's flags change memory, memsw, pids and cpu limits in the cgroup and inside, as runc update does",
    cannotRun(),
  ),
  () =>
    withOci(async (o) => {
      const runcRoot = o.folder("runc-root");
      const verbs = both(o, runcRoot);
      const bundle = await o.bundle((c) => {
        c.process.args = ["sleep", "1000"];
        c.linux.resources = {
          ...c.linux.resources,
          memory: { limit: 64 * MiB, swap: 128 * MiB },
          pids: { limit: 100 },
          cpu: { shares: 1024 },
        };
      });
      const process = join(o.work, "process.json");
      const read = FILES.filter((f) => !f.includes("memsw")).map((f) => `/sys/fs/cgroup/${f}`).join(" ");
      Deno.writeTextFileSync(
        process,
        JSON.stringify({ args: ["sh", "-c", `cat ${read}`], cwd: "/", env: [PATH_ENV], user: { uid: 0, gid: 0 } }),
      );
      const id = o.newId();
      const created = await createBoth(o, runcRoot, bundle, id);
      assertEquals([created.runc.code, created.gcr.code], [0, 0], "create", describe(created.gcr));
      const started = await verbs(["start", id]);
      assertEquals([started.runc.code, started.gcr.code], [0, 0], "start", describe(started.gcr));
      o.pids.push(JSON.parse((await o.gcr(["state", id])).stdout).pid);

      const values = (memory: number | string, memsw: number | string, pids: string, shares: number, quota = -1) => [
        `memory/memory.limit_in_bytes: ${memory}`,
        `memory/memory.memsw.limit_in_bytes: ${memsw}`,
        `pids/pids.max: ${pids}`,
        `cpu/cpu.shares: ${shares}`,
        `cpu/cpu.cfs_quota_us: ${quota}`,
      ];
      const inside = (memory: number | string, pids: string, shares: number, quota = -1) =>
        `${memory}\n${pids}\n${shares}\n${quota}\n`;
      assertEquals(await limitsOf(o, runcRoot, id, process), {
        host: values(64 * MiB, 128 * MiB, "100", 1024),
        inside: inside(64 * MiB, "100", 1024),
      }, "as created");

      // As containerd's shim sends docker update's: zero for what is not
      // changed, and (upward) the memory+swap limit written first.
      const resources = {
        memory: { limit: 256 * MiB, swap: 512 * MiB, reservation: 0, kernel: 0 },
        cpu: { shares: 512, quota: 0, period: 0, cpus: "", mems: "" },
        blockIO: { weight: 0 },
        pids: { limit: 50 },
      };
      const up = await verbs(["update", "--resources=-", id], JSON.stringify(resources));
      assertEquals([up.runc.code, up.gcr.code], [0, 0], "update --resources=-", describe(up.gcr));
      assertEquals(await limitsOf(o, runcRoot, id, process), {
        host: values(256 * MiB, 512 * MiB, "50", 512),
        inside: inside(256 * MiB, "50", 512),
      }, "after update --resources=-");
      const record = JSON.parse(readTextOr(join(o.root, id, "container.json")));
      assertEquals(record.memoryBytes, 256 * MiB, "gcr's record keeps the new memory limit");

      // Downward through the flags: the memory limit first.
      const down = await verbs([
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "96m",
        "--pids-limit",
        "20",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "50000",
        id,
      ]);
      assertEquals([down.runc.code, down.gcr.code], [0, 0], "update with flags", describe(down.gcr));
      assertEquals(await limitsOf(o, runcRoot, id, process), {
        host: values(96 * MiB, 96 * MiB, "20", 256, 50000),
        inside: inside(96 * MiB, "20", 256, 50000),
      }, "after update --memory 96m --memory-swap 96m --pids-limit 20 --cpu-share 256 --cpu-quota 50000");

      // 40 MB in the container's tmpfs, which cannot be swapped out: a
      // 16 MB limit is refused by the kernel (EBUSY), and said so.
      const fill = join(o.work, "fill.json");
      const args = ["sh", "-c", "head -c 41943040 /dev/zero > /dev/shm/fill"];
      Deno.writeTextFileSync(fill, JSON.stringify({ args, cwd: "/", env: [PATH_ENV], user: { uid: 0, gid: 0 } }));
      const filled = await verbs(["exec", "--process", fill, id]);
      assertEquals([filled.runc.code, filled.gcr.code], [0, 0], "40 MB written to /dev/shm", describe(filled.gcr));
      const below = await verbs(["update", "--memory", "16m", "--memory-swap", "16m", id]);
      assertEquals([below.runc.code, below.gcr.code], [1, 1], "a limit below the usage fails", describe(below.gcr));
      const words = `unable to set memory limit to ${16 * MiB} (current usage: `;
      assertIncludes(below.runc.stderr, words, "runc says why", describe(below.runc));
      assertIncludes(below.gcr.stderr, words, "gcr says why in runc's words", describe(below.gcr));
      assertEquals((await limitsOf(o, runcRoot, id, process)).host, values(96 * MiB, 96 * MiB, "20", 256, 50000));

      // -1 lifts memory (and memory+swap with it), pids and the quota.
      const lift = await verbs(["update", "--memory", "-1", "--pids-limit", "-1", "--cpu-quota", "-1", id]);
      assertEquals([lift.runc.code, lift.gcr.code], [0, 0], "update to -1", describe(lift.gcr));
      assertEquals(await limitsOf(o, runcRoot, id, process), {
        host: values(UNLIMITED, UNLIMITED, "max", 256),
        inside: inside(UNLIMITED, "max", 256),
      }, "after update --memory -1 --pids-limit -1 --cpu-quota -1");

      const deleted = await verbs(["delete", "--force", id]);
      assertEquals([deleted.runc.code, deleted.gcr.code], [0, 0], "delete --force", describe(deleted.runc));
    }),
);

Deno.test(
  named("update: --trace-dir shows each write; what gcr cannot set is refused by field with one line", cannotRun()),
  () =>
    withOci(async (o) => {
      const bundle = await o.bundle((c) => {
        c.process.args = ["sleep", "1000"];
        c.linux.resources = { ...c.linux.resources, memory: { limit: 64 * MiB, swap: 64 * MiB } };
      });
      const id = o.newId();
      const { pid } = await o.launch(id, bundle);
      const traces = o.folder("traces");
      await o.gcrOk(["--trace-dir", traces, "update", "--memory", "128m", "--pids-limit", "30", id]);
      const memory = cgroupFoldersOf(pid).find((dir) => dir.startsWith("/sys/fs/cgroup/memory/"))!;
      const pidsDir = cgroupFoldersOf(pid).find((dir) => dir.startsWith("/sys/fs/cgroup/pids/"))!;
      const trace = readTextOr(join(traces, `${id}.trace`));
      // No swap at create (memsw as the limit): none after, memsw first as it rises.
      assertIncludes(
        trace,
        [
          `    write ${memory}/memory.memsw.limit_in_bytes: ${128 * MiB} (if the kernel offers it)`,
          `    write ${memory}/memory.limit_in_bytes: ${128 * MiB}`,
          `    write ${pidsDir}/pids.max: 30`,
          "── exit 0",
        ].join("\n"),
        "the writes in the container's trace, in order",
        trace,
      );
      assertEquals(readTextOr(`${memory}/memory.limit_in_bytes`).trim(), String(128 * MiB));
      assertEquals(readTextOr(`${memory}/memory.memsw.limit_in_bytes`).trim(), String(128 * MiB));

      for (
        const [args, stdin, words] of [
          [["--blkio-weight", "100"], undefined, "linux.resources.blockIO: not supported"],
          [["--cpu-rt-runtime", "1000"], undefined, "linux.resources.cpu.realtimeRuntime: not supported"],
          [["--resources", "-"], '{"unified": {"memory.high": "1000000"}}', "linux.resources.unified: not supported"],
          [["--resources", "-"], "{not json", "--resources -: not JSON"],
          [["--l3-cache-schema", "L3:0=f"], undefined, "--l3-cache-schema: not supported"],
        ] as const
      ) {
        const refused = await o.gcr(["update", ...args, id], undefined, stdin);
        assertEquals(refused.code, 1, `update ${args.join(" ")} fails as runc's verbs do`, describe(refused));
        assertEquals(refused.stderr.split("\n").filter(Boolean).length, 1, "one line", describe(refused));
        assertIncludes(refused.stderr, words, "naming the field", describe(refused));
      }
      assert(readTextOr(`${pidsDir}/pids.max`).trim() === "30", "a refused update writes nothing");
    }),
);
