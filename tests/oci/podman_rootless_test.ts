/**
 * Rootless podman, run by an ordinary user with subordinate ranges
 * (RANGED_USER), driving gcr as its OCI runtime, side by side with runc:
 * podman starts the runtime inside the user namespace it made for the user,
 * where the runtime is uid 0 with no power over the host. The same podman
 * commands must give the same results with both; the environment
 * (tests/oci/podman_env.ts, `user`) keeps everything in its folder and
 * leaves the user's home alone.
 *
 * The machine is cgroup v1 (docs/design.md §4): nothing is delegated to the
 * user, so podman sets no resources, and gcr, like runc, makes no cgroup.
 * What gcr does with `linux.resources` when rootless is checked on bundles
 * of the test's own, run through `podman unshare` (podman's user namespace):
 * without a delegated cgroup, and with v1 folders the test chowns to the
 * user (v1's delegation) named as the bundle's cgroupsPath.
 */
import { join } from "node:path";
import {
  busyboxRootfs,
  describe,
  ensureUser,
  isDead,
  listTree,
  liveProcessesInNamespace,
  liveProcessesWith,
  named,
  RANGED_USER,
  run,
  SRC_DIR,
  which,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, waitFor } from "../helpers.ts";
import { exists, readTextOr } from "../../host/files.ts";
import { containerPaths } from "../../state/paths.ts";
import { readRecord } from "../../state/records.ts";
import { type PodmanEnv, podmanEnv, rootlessPodmanUnavailable } from "./podman_env.ts";
import type { Json } from "./oci_env.ts";
import {
  checkDetachedLifecycle,
  checkRunRm,
  checkRunTty,
  podmanUnderEach,
  startLeftRunning,
  withPodman,
} from "./podman_cases.ts";

/** Rootless podman gives `start` and `delete` no $PATH: the gcr script then finds deno on the shell's default one. */
function denoOnDefaultPath(): string | undefined {
  const folders = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  return folders.some((folder) => exists(join(folder, "deno")))
    ? undefined
    : "deno is not in /usr/local/bin or /usr/bin, where the runtime rootless podman starts (no $PATH) finds it";
}

const skip = rootlessPodmanUnavailable() ?? (which("runc") ? undefined : "runc is not installed") ??
  denoOnDefaultPath();

/** runc (the anchor) and gcr, from the copy of the source the test user can read. */
const RUNTIMES = [["runc", () => which("runc")!], ["gcr", () => join(SRC_DIR, "gcr")]] as const;

const rootless = (runtime: string) => ({ runtime, user: RANGED_USER });
const withEnv = (runtime: string, fn: (env: PodmanEnv) => Promise<void>) => withPodman(rootless(runtime), fn);

for (const [name, path] of RUNTIMES) {
  Deno.test(
    named(
      `rootless podman run --rm with ${name}: the command's output, its exit status, root of the user's namespace`,
      skip,
    ),
    () => withEnv(path(), checkRunRm),
  );
  Deno.test(
    named(`rootless podman run -d, exec, stop and rm with ${name}`, skip),
    () => withEnv(path(), checkDetachedLifecycle),
  );
  Deno.test(
    named(`rootless podman run -it under a pseudo-terminal with ${name}`, skip),
    () => withEnv(path(), checkRunTty),
  );
}

/** What a container sees of its confinement and of the ids it was given: the same under gcr as under runc. */
const PROBE = [
  "grep -E '^(Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
  "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups",
  "echo nofile $(ulimit -n) nproc $(ulimit -u)",
  "ls /dev | sort | tr '\\n' ' '; echo",
  "awk '{print $5, $6, $(NF-2)}' /proc/self/mountinfo | sort",
  "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
  "echo > /proc/sys/kernel/hostname 2>/dev/null && echo proc-sys-writable || echo proc-sys-read-only",
  "id; pwd; echo $HOSTNAME $container",
].join("; ");

Deno.test(
  named("rootless podman: a gcr container is confined as a runc one (caps, seccomp, uid_map, mounts, /dev)", skip),
  async () => {
    const seen = await podmanUnderEach(
      RUNTIMES,
      rootless,
      (env) => ["run", "--rm", "--hostname", "probe", env.image, "sh", "-c", PROBE],
    );
    for (const [name, result] of Object.entries(seen)) {
      assertEquals(result.code, 0, `the probe under ${name}`, describe(result));
    }
    const account = await ensureUser(RANGED_USER);
    const gcr = seen.gcr!.stdout;
    assertMatch(gcr, /Seccomp:\s+2/, "gcr installed podman's seccomp filter", gcr);
    assertMatch(
      gcr,
      new RegExp(`^\\s+0\\s+${account.uid}\\s+1\\n\\s+1\\s+\\d+\\s+65536\\n`, "m"),
      "uid 0 is the user and the rest its subordinate range: podman's namespace, none of gcr's own",
      gcr,
    );
    assertMatch(gcr, /^Groups:\s*$/m, "no supplementary groups (not the user's own)", gcr);
    assertEquals(gcr, seen.runc!.stdout, "the same under gcr as under runc", describe(seen.gcr!));
  },
);

Deno.test(
  named("rootless podman --uidmap: config.json's own user namespace inside podman's, as runc makes it", skip),
  async () => {
    const seen = await podmanUnderEach(
      RUNTIMES,
      rootless,
      (env) => [
        "run",
        "--rm",
        "--uidmap",
        "0:1:1000",
        "--gidmap",
        "0:1:1000",
        env.image,
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id; touch /tmp/f && stat -c '%u %g' /tmp/f",
      ],
    );
    for (const [name, result] of Object.entries(seen)) {
      assertEquals(result.code, 0, `--uidmap under ${name}`, describe(result));
    }
    const words = (text: string) => text.trim().split(/\s+/).join(" ");
    assertMatch(
      words(seen.gcr!.stdout),
      /^0 1 1000 0 1 1000 uid=0\(root\) gid=0\(root\)/,
      "the maps asked for",
      seen.gcr!.stdout,
    );
    assertEquals(seen.gcr!.stdout, seen.runc!.stdout, "the same under gcr as under runc", describe(seen.gcr!));
  },
);

Deno.test(
  named("rootless podman --memory on cgroup v1: podman drops the limit, and gcr runs the container as runc does", skip),
  async () => {
    const results = await podmanUnderEach(
      RUNTIMES,
      rootless,
      (env) => ["run", "--rm", "--memory", "64m", env.image, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
    );
    const seen = Object.fromEntries(
      Object.entries(results).map(([name, result]) => [name, `exit ${result.code}\n${result.stdout}${result.stderr}`]),
    );
    assertIncludes(seen.runc!, "exit 0\n", "runc ran it", seen.runc);
    assertEquals(seen.gcr, seen.runc, "the same status, output and podman warning under gcr");
  },
);

Deno.test(
  named(
    "rootless podman with gcr: state under $XDG_RUNTIME_DIR/gcr, the user's own folder, and none in /run/gcr",
    skip,
  ),
  async () => {
    const runGcr = exists("/run/gcr") ? listTree("/run/gcr") : [];
    await withEnv(join(SRC_DIR, "gcr"), async (env) => {
      const account = env.account!;
      const started = await env.podman(["run", "-d", env.image, "sleep", "100"]);
      assertEquals(started.code, 0, "podman run -d", describe(started));
      const id = started.stdout.trim();
      const state = join(env.dir, "rt", "gcr");
      const info = Deno.lstatSync(state);
      assertEquals(
        [info.isDirectory, info.uid, (info.mode ?? 0) & 0o7777],
        [true, account.uid, 0o1700],
        `${state}: a folder of the user's, 0700 and sticky as runc makes its own`,
      );
      // The record as gcr reads it: a started OCI container's is create's JSON and `started` beside it.
      const record = readRecord(containerPaths(id, join(env.dir, "unused"), state));
      assertEquals(record?.status, "running", "the container's record is in the user's runtime folder");
      const removed = await env.podman(["rm", "--force", "--time", "0", id]);
      assertEquals(removed.code, 0, "podman rm --force", describe(removed));
      assert(!exists(join(state, id)), "podman rm removed the record");
    });
    assertEquals(exists("/run/gcr") ? listTree("/run/gcr") : [], runGcr, "/run/gcr untouched");
  },
);

/** The parts of the test user's home rootless podman would write without the environment's variables. */
function homeState(home: string): string[] {
  return [".config", ".local/share/containers", ".cache/containers"].flatMap((sub) => {
    const path = join(home, sub);
    return exists(path) ? listTree(path).map((line) => `${sub}${line}`) : [`${sub} absent`];
  });
}

Deno.test(
  named("rootless podman environment cleanup: pause process and containers gone, folder removed, home untouched", skip),
  async () => {
    const account = await ensureUser(RANGED_USER);
    const home = homeState(account.home);
    const env = await podmanEnv({ runtime: join(SRC_DIR, "gcr"), user: RANGED_USER });
    const dir = env.dir;
    let pid = 0;
    let pause = 0;
    let userNamespace = "";
    try {
      // Left running on purpose: cleanup has to stop it.
      pid = await startLeftRunning(env);
      pause = Number(readTextOr(join(dir, "libpod/pause.pid")).trim());
      assert(pause > 0 && !isDead(pause), "podman's pause process runs, its pid in libpod's tmp folder");
      userNamespace = Deno.readLinkSync(`/proc/${pause}/ns/user`);
      assertEquals(Deno.readLinkSync(`/proc/${pid}/ns/user`), userNamespace, "the container is in podman's namespace");
    } finally {
      await env.cleanup();
    }
    assert(isDead(pid), `the container's process ${pid} is gone`);
    assert(isDead(pause), `the pause process ${pause} is gone`);
    assertEquals(liveProcessesInNamespace("user", userNamespace), [], "nothing is left in podman's user namespace");
    assertEquals(liveProcessesWith(dir), [], "no process mentions the environment's folder");
    assert(!exists(dir), `${dir} is removed`);
    assertEquals(homeState(account.home), home, `${account.home}: ~/.config and containers' folders as they were`);
    await env.cleanup(); // idempotent
  },
);

// ---------------------------------------------------------------------------
// linux.resources, rootless: bundles of the test's own in podman's user namespace

type Resources = Record<string, unknown> | undefined;

/** A bundle (busybox rootfs, `runc spec`'s config with `resources`) in the environment's folder, the user's. */
async function makeBundle(
  env: PodmanEnv,
  name: string,
  resources: Resources,
  edit?: (config: Json) => void,
): Promise<string> {
  const bundle = join(env.dir, name);
  const rootfs = await busyboxRootfs();
  Deno.mkdirSync(bundle);
  const copied = await run("cp", ["-a", join(rootfs, "busybox"), join(bundle, "rootfs")], { timeoutMs: 60_000 });
  assertEquals(copied.code, 0, "copying the rootfs", describe(copied));
  const spec = await run(which("runc")!, ["spec", "--bundle", bundle]);
  assertEquals(spec.code, 0, "runc spec", describe(spec));
  const config = JSON.parse(Deno.readTextFileSync(join(bundle, "config.json")));
  config.process.terminal = false;
  config.process.args = ["sh", "-c", "echo ran"];
  if (resources) config.linux.resources = resources;
  else delete config.linux.resources;
  edit?.(config);
  Deno.writeTextFileSync(join(bundle, "config.json"), JSON.stringify(config, null, 2));
  const account = env.account!;
  const owned = await run("chown", ["-R", `${account.uid}:${account.gid}`, bundle]);
  assertEquals(owned.code, 0, "chown of the bundle", describe(owned));
  return bundle;
}

/**
 * `<runtime> [global…] create`, start, wait and delete in podman's user
 * namespace (`podman unshare`), each runtime with its own --root. The
 * container's stdout and create's stderr go to a file; returns create's
 * status, then the file and what `--log` got.
 */
async function runBundle(
  env: PodmanEnv,
  runtime: string,
  bundle: string,
  global: readonly string[],
): Promise<{ code: number; output: string; log: string }> {
  const id = `b${crypto.randomUUID().slice(0, 8)}`;
  const root = join(env.dir, "rt", `oci-${id}`);
  const out = join(env.dir, `${id}.out`);
  const log = join(env.dir, `${id}.log`);
  const oci = (...args: string[]) => ["unshare", runtime, "--root", root, "--log", log, ...global, ...args];
  const create = await env.podman([
    "unshare",
    "sh",
    "-c",
    'out=$1; shift; exec "$@" </dev/null >"$out" 2>&1',
    "sh",
    out,
    ...oci("create", "--bundle", bundle, id).slice(1),
  ]);
  if (create.code === 0) {
    const started = await env.podman(oci("start", id));
    assertEquals(started.code, 0, `${runtime} start`, describe(started));
    // Its state where --root says, not under $XDG_RUNTIME_DIR: runc's <root>/<id>, gcr's the same.
    assert(exists(join(root, id)), `${runtime} keeps the container's state in --root`, describe(started));
    await waitFor(`${runtime}'s container ${id} to stop`, async () => {
      const state = await env.podman(oci("state", id));
      return JSON.parse(state.stdout || "{}").status === "stopped" || undefined;
    }, 15_000);
    const deleted = await env.podman(oci("delete", id));
    assertEquals(deleted.code, 0, `${runtime} delete`, describe(deleted));
  }
  const state = await env.podman(oci("state", id));
  assert(state.code !== 0, `${runtime}: no container ${id} is left`, describe(state));
  return { code: create.code, output: readTextOr(out), log: readTextOr(log) };
}

/**
 * A folder of the user's own in every cgroup hierarchy of this host, as an
 * admin delegates a v1 cgroup (chown): what a rootless runtime may use for
 * limits on cgroup v1. cpuset's needs its parent's cpus and mems first.
 */
function delegateCgroups(owner: { uid: number; gid: number }): { name: string; v1: number; remove(): void } {
  const name = `gcr-delegated-${crypto.randomUUID().slice(0, 8)}`;
  const made: string[] = [];
  for (const entry of Deno.readDirSync("/sys/fs/cgroup")) {
    if (!entry.isDirectory) continue; // cpu and cpuacct are links to cpu,cpuacct
    const dir = `/sys/fs/cgroup/${entry.name}/${name}`;
    Deno.mkdirSync(dir);
    made.push(dir);
    for (const file of ["cpuset.cpus", "cpuset.mems"]) {
      if (exists(`${dir}/${file}`)) {
        Deno.writeTextFileSync(`${dir}/${file}`, readTextOr(`/sys/fs/cgroup/${entry.name}/${file}`));
      }
    }
  }
  for (const dir of made) {
    const owned = new Deno.Command("chown", { args: ["-R", `${owner.uid}:${owner.gid}`, dir] }).outputSync();
    assert(owned.success, `chown ${dir}`);
  }
  return {
    name,
    v1: made.filter((dir) => !dir.startsWith("/sys/fs/cgroup/unified/")).length,
    remove: () => {
      const left = made.filter((dir) => {
        try {
          Deno.removeSync(dir);
          return false;
        } catch {
          return true;
        }
      });
      assertEquals(left, [], "the delegated folders are empty again: no cgroup of the container's was left");
    },
  };
}

Deno.test(
  named(
    "rootless gcr create as runc on cgroup v1 with delegated folders: config.json's limits applied in its cgroupsPath",
    skip,
  ),
  async () => {
    const account = await ensureUser(RANGED_USER);
    const delegated = delegateCgroups(account);
    const seen: Record<string, string> = {};
    try {
      for (const [name, path] of RUNTIMES) {
        await withEnv(path(), async (env) => {
          const bundle = await makeBundle(
            env,
            "bundle-limits",
            { memory: { limit: 64 << 20 }, pids: { limit: 42 } },
            (c) => {
              c.linux.cgroupsPath = `/${delegated.name}/${name}-${crypto.randomUUID().slice(0, 8)}`;
              c.process.args = [
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; grep -c " +
                `${delegated.name} /proc/self/cgroup`,
              ];
            },
          );
          const result = await runBundle(env, path(), bundle, []);
          assertEquals(result.code, 0, `${name} create`, `${result.output}\n${result.log}`);
          seen[name] = result.output;
        });
      }
    } finally {
      delegated.remove();
    }
    assertEquals(
      seen.runc,
      `${64 << 20}\n42\n${delegated.v1}\n`,
      "runc, the anchor: the limits inside, and the container in the delegated folder of every v1 hierarchy",
      seen.runc,
    );
    assertEquals(seen.gcr, seen.runc, "gcr as runc");
  },
);

Deno.test(
  named(
    "rootless gcr create as runc: limits without a delegated cgroup fail, device rules are left out, --rootless",
    skip,
  ),
  async () => {
    const cases: [string, Resources, string[]][] = [
      ["a memory limit", { memory: { limit: 64 << 20 } }, []],
      ["device rules only", { devices: [{ allow: false, access: "rwm" }] }, []],
      ["no resources", undefined, []],
      ["no resources, --rootless false", undefined, ["--rootless", "false"]],
      ["no resources, --rootless true", undefined, ["--rootless", "true"]],
      // The rest of what runc's parseBoolOrAuto takes, and what it refuses.
      ["no resources, --rootless=AUTO", undefined, ["--rootless=AUTO"]],
      ["no resources, --rootless=", undefined, ["--rootless="]],
      ["no resources, --rootless 1", undefined, ["--rootless", "1"]],
      ["no resources, --rootless F", undefined, ["--rootless", "F"]],
      ["no resources, --rootless maybe", undefined, ["--rootless", "maybe"]],
    ];
    const seen: Record<string, string[]> = {};
    const gcrLogs: string[] = [];
    const gcrOutputs: string[] = [];
    for (const [name, path] of RUNTIMES) {
      await withEnv(path(), async (env) => {
        seen[name] = [];
        for (const [label, resources, global] of cases) {
          const bundle = await makeBundle(env, `bundle-${seen[name]!.length}`, resources);
          const result = await runBundle(env, path(), bundle, global);
          seen[name]!.push(`${label}: ${result.code === 0 ? `ran, ${result.output.trim()}` : "create failed"}`);
          if (name === "gcr") {
            gcrLogs.push(result.log);
            gcrOutputs.push(result.output);
          }
          if (result.code !== 0) assert(result.output.length > 0, `${name} says why (${label})`);
        }
      });
    }
    assertEquals(seen.runc, [
      "a memory limit: create failed",
      "device rules only: ran, ran",
      "no resources: ran, ran",
      "no resources, --rootless false: create failed",
      "no resources, --rootless true: ran, ran",
      "no resources, --rootless=AUTO: ran, ran",
      "no resources, --rootless=: ran, ran",
      "no resources, --rootless 1: ran, ran",
      "no resources, --rootless F: create failed",
      "no resources, --rootless maybe: create failed",
    ], "runc, the anchor");
    assertEquals(seen.gcr, seen.runc, "gcr as runc");
    assertIncludes(gcrLogs[1]!, "linux.resources.devices left out", "gcr's --log says what it left out");
    assertIncludes(
      gcrLogs[2]!,
      "rootless: no cgroup of the container's own, it stays in gcr's",
      "gcr's --log says the container has no cgroup of its own",
    );
    assertIncludes(
      gcrOutputs[9]!,
      '--rootless must be true, false or auto (got "maybe")',
      "a bad --rootless, in one line",
    );
  },
);
