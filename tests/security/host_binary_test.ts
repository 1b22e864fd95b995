/**
 * CVE-2019-5736's shape, tried for real: a hostile program in a container
 * tries to open the binary of the runtime that started it, and to write to
 * it once the runtime has exited. The runtime's binary here is a copy of
 * deno, put first on PATH (the gcr script runs the first deno on PATH), so
 * nothing the tests do can touch the host's real deno. The probe
 * (tests/security/exe_probe.c, static, no libc) attacks two ways:
 *
 * - joining: the container's pid 1 scans /proc while `gcr exec` sends
 *   processes in, and opens /proc/<pid>/exe of any that is still a clone
 *   of the runtime;
 * - entrypoint: the image's command is /proc/self/exe and its
 *   /lib64/ld-linux-x86-64.so.2 is the probe, so if the runtime exec'd the
 *   command from a clone of itself, the kernel runs the runtime's binary
 *   with the probe as its interpreter.
 *
 * Each case fails if the probe's report names the copy's device and inode,
 * or if the copy's contents changed.
 *
 * @module
 */
import { readTextOr } from "../../host/files.ts";
import { join } from "node:path";
import {
  type Account,
  asUser,
  BUSYBOX,
  busyboxRootfs,
  describe,
  ensureFixtureDirs,
  ensureUser,
  GCR,
  gcr,
  type GcrOptions,
  named,
  needs,
  RANGED_USER,
  REPO,
  rootlessUnavailable,
  run,
  type RunResult,
  SCRATCH,
  syncSource,
} from "../fixtures.ts";
import { assertEquals, assertNotIncludes, waitFor } from "../helpers.ts";

const SKIP = needs("gcc", "runc");

/** A scratch folder with a copy of deno in bin/ and a hostile busybox rootfs in rootfs/. */
interface Arena {
  readonly dir: string;
  readonly deno: string;
  readonly rootfs: string;
  /** "dev:ino" of the deno copy, as the probe reports files. */
  readonly target: string;
  readonly digest: string;
  remove(): void;
}

async function ok(program: string, args: string[]): Promise<RunResult> {
  const result = await run(program, args, { timeoutMs: 120_000 });
  assertEquals(result.code, 0, `${program} failed`, describe(result));
  return result;
}

async function sha256(path: string): Promise<string> {
  return (await ok("sha256sum", [path])).stdout.split(" ")[0]!;
}

/** Makes the arena; with `owner`, everything in it is theirs (a deno in ~/.deno/bin, as rootless users have). */
async function arena(owner?: { uid: number; gid: number }): Promise<Arena> {
  ensureFixtureDirs();
  await busyboxRootfs();
  const dir = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "escape-" });
  Deno.chmodSync(dir, 0o755);
  const deno = join(dir, "bin", "deno");
  const rootfs = join(dir, "rootfs");
  Deno.mkdirSync(join(dir, "bin"));
  await ok("cp", [Deno.execPath(), deno]);
  await ok("cp", ["-a", BUSYBOX, rootfs]);
  Deno.mkdirSync(join(rootfs, "lib64"), { recursive: true });
  const probe = join(rootfs, "probe");
  await ok("gcc", [
    "-static",
    "-nostdlib",
    "-fno-stack-protector",
    "-fno-builtin",
    "-O2",
    "-o",
    probe,
    join(REPO, "tests/security/exe_probe.c"),
  ]);
  await ok("cp", [probe, join(rootfs, "lib64", "ld-linux-x86-64.so.2")]);
  if (owner) await ok("chown", ["-R", `${owner.uid}:${owner.gid}`, dir]);
  const info = Deno.statSync(deno);
  return {
    dir,
    deno,
    rootfs,
    target: `${info.dev}:${info.ino}`,
    digest: await sha256(deno),
    remove: () => Deno.removeSync(dir, { recursive: true }),
  };
}

/** The probe must not have reached the copy, and the copy must be as it was. */
async function assertUntouched(a: Arena, report: string, context: string): Promise<void> {
  assertNotIncludes(report, `probe: exe ${a.target}\n`, "the probe ran with the runtime's binary as its exe", context);
  assertNotIncludes(report, "probe: opened the runtime's binary", "the probe opened the runtime's binary", context);
  assertNotIncludes(report, "probe: wrote", "the probe wrote to the runtime's binary", context);
  assertEquals(await sha256(a.deno), a.digest, "the runtime's binary is unchanged", context);
}

/**
 * A bundle for `gcr create` from `runc spec` (`--rootless` for a user: a user
 * namespace mapping 0 to them), with the arena's rootfs and `args`.
 */
async function bundle(a: Arena, name: string, args: string[], user?: Account): Promise<string> {
  const dir = join(a.dir, name);
  Deno.mkdirSync(dir);
  await ok("runc", ["spec", ...(user ? ["--rootless"] : []), "--bundle", dir]);
  const path = join(dir, "config.json");
  const config = JSON.parse(Deno.readTextFileSync(path));
  config.root = { path: a.rootfs, readonly: false };
  config.process.terminal = false;
  config.process.args = args;
  if (user) {
    config.linux.uidMappings = [{ containerID: 0, hostID: user.uid, size: 1 }];
    config.linux.gidMappings = [{ containerID: 0, hostID: user.gid, size: 1 }];
    await ok("chown", ["-R", `${user.uid}:${user.gid}`, dir]);
  }
  Deno.writeTextFileSync(path, JSON.stringify(config));
  return dir;
}

/**
 * `gcr <args>` run by the arena's deno (as `user`: from the world-readable
 * source copy), its stdout and stderr into `log`, which the container keeps.
 */
async function gcrLogged(a: Arena, args: string[], log: string, user?: Account): Promise<RunResult> {
  const script = user ? join(await syncSource(), "gcr") : GCR;
  const line = `exec ${[script, ...args].map((arg) => `'${arg}'`).join(" ")} >>'${log}' 2>&1`;
  if (!user) {
    return run("sh", ["-c", line], { cwd: REPO, env: { PATH: `${join(a.dir, "bin")}:${Deno.env.get("PATH") ?? ""}` } });
  }
  return run("setpriv", asUser(user, ["sh", "-c", line], { path: join(a.dir, "bin") }));
}

/** Runs `fn` in a fresh arena (owned by `owner` when given), removed afterwards whatever happens. */
async function inArena(fn: (a: Arena) => Promise<void>, owner?: { uid: number; gid: number }): Promise<void> {
  const a = await arena(owner);
  try {
    await fn(a);
  } finally {
    a.remove();
  }
}

/** Waits until the OCI container `id` has stopped (its command ended), then deletes it. */
async function stopped(root: string, id: string, as: GcrOptions): Promise<void> {
  await waitFor(
    `container ${id} to stop`,
    async () => {
      const state = await gcr(["--root", root, "state", id], as);
      return state.code !== 0 || JSON.parse(state.stdout).status === "stopped" ? true : undefined;
    },
    20_000,
    200,
  );
  await gcr(["--root", root, "delete", "--force", id], as);
}

/** The entrypoint attack through the OCI verbs: the bundle's command is /proc/self/exe. */
async function ociEntryAttack(a: Arena, user?: Account): Promise<void> {
  const root = join(a.dir, "state");
  const log = join(a.dir, "container.log");
  const dir = await bundle(a, "entry", ["/proc/self/exe"], user);
  const created = await gcrLogged(a, ["--root", root, "create", "--bundle", dir, "entry"], log, user);
  assertEquals(created.code, 0, "gcr create", readTextOr(log));
  const started = await gcrLogged(a, ["--root", root, "start", "entry"], log, user);
  assertEquals(started.code, 0, "gcr start", readTextOr(log));
  await stopped(root, "entry", { deno: a.deno, ...(user ? { user: user.name } : {}) });
  await assertUntouched(a, readTextOr(log), readTextOr(log));
}

/** The joining attack through the OCI verbs: `gcr exec --process` while the probe, pid 1, watches. */
async function ociJoiningAttack(a: Arena, user?: Account): Promise<void> {
  const as = { deno: a.deno, ...(user ? { user: user.name } : {}) };
  const root = join(a.dir, "state");
  const log = join(a.dir, "container.log");
  const dir = await bundle(a, "join", ["/probe", "watch", a.target, "4"], user);
  const created = await gcrLogged(a, ["--root", root, "create", "--bundle", dir, "join"], log, user);
  assertEquals(created.code, 0, "create", readTextOr(log));
  assertEquals((await gcrLogged(a, ["--root", root, "start", "join"], log, user)).code, 0, "start", readTextOr(log));
  await waitFor("the probe to watch", () => readTextOr(log).includes("probe: watching") || undefined);
  const process = join(a.dir, "process.json");
  const config = JSON.parse(Deno.readTextFileSync(join(dir, "config.json")));
  Deno.writeTextFileSync(process, JSON.stringify({ ...config.process, args: ["/bin/true"] }));
  const execs: RunResult[] = [];
  for (let i = 0; i < 5; i++) {
    execs.push(await gcr(["--root", root, "exec", "--process", process, "join"], as));
    if (execs.at(-1)!.code !== 0) break; // the probe won and ended the container: the report says so
  }
  await stopped(root, "join", as);
  await assertUntouched(a, readTextOr(log), readTextOr(log));
  assertEquals(execs.map((e) => e.code), [0, 0, 0, 0, 0], "every exec ran", execs.map(describe).join("\n"));
}

Deno.test(
  named("OCI create/start: a command of /proc/self/exe never runs the runtime's binary", SKIP),
  () => inArena((a) => ociEntryAttack(a)),
);

Deno.test(
  named("OCI exec --process: a joining process is never open to the container", SKIP),
  () => inArena((a) => ociJoiningAttack(a)),
);

Deno.test(
  named(
    "rootless OCI create/start and exec --process: neither attack reaches a deno the user owns",
    rootlessUnavailable() ?? SKIP,
  ),
  async () => {
    const user = await ensureUser(RANGED_USER);
    for (const attack of [ociEntryAttack, ociJoiningAttack]) {
      await inArena(async (a) => {
        await attack(a, user);
      }, user);
    }
  },
);

/**
 * exec --process and runc's `exec ID CMD` in a container of the OCI verbs:
 * as root, without a user namespace; rootless, in the one create made (its
 * root is the user). uid_map says which namespace the process joined.
 */
async function ociExecs(a: Arena, user?: Account): Promise<void> {
  const as = { deno: a.deno, ...(user ? { user: user.name } : {}) };
  const root = join(a.dir, "state");
  const log = join(a.dir, "container.log");
  const dir = await bundle(a, "sleeper", ["sleep", "1000"], user);
  assertEquals(
    (await gcrLogged(a, ["--root", root, "create", "--bundle", dir, "s"], log, user)).code,
    0,
    readTextOr(log),
  );
  assertEquals((await gcrLogged(a, ["--root", root, "start", "s"], log, user)).code, 0, readTextOr(log));
  const map = user ? `0 ${user.uid} 1` : "0 0 4294967295";
  const probe = ["sh", "-c", "id -u; cat /proc/self/uid_map"];
  const process = join(a.dir, "process.json");
  const config = JSON.parse(Deno.readTextFileSync(join(dir, "config.json")));
  Deno.writeTextFileSync(process, JSON.stringify({ ...config.process, args: probe }));
  if (user) await ok("chown", [`${user.uid}:${user.gid}`, process]);
  const words = (text: string) => text.trim().split(/\s+/).join(" ");
  for (const form of [["--process", process, "s"], ["s", ...probe]]) {
    const exec = await gcr(["--root", root, "exec", ...form], as);
    assertEquals(exec.code, 0, `exec ${form[0]}`, describe(exec));
    assertEquals(
      words(exec.stdout),
      `0 ${map}`,
      `exec ${form[0]}: uid 0 of the container's user namespace`,
      describe(exec),
    );
  }
  const status = await gcr(["--root", root, "exec", "s", "sh", "-c", "exit 7"], as);
  assertEquals(status.code, 7, "exec ID CMD's exit status", describe(status));
  assertEquals((await gcr(["--root", root, "delete", "--force", "s"], as)).code, 0, "delete --force");
}

Deno.test(
  named("OCI exec --process and exec ID CMD as root: no user namespace", SKIP),
  () => inArena((a) => ociExecs(a)),
);

Deno.test(
  named(
    "rootless OCI exec --process and exec ID CMD: in the container's own user namespace",
    rootlessUnavailable() ?? SKIP,
  ),
  async () => {
    const user = await ensureUser(RANGED_USER);
    await inArena(async (a) => {
      await ociExecs(a, user);
    }, user);
  },
);

Deno.test(named("gcr run: a command of /proc/self/exe never runs the runtime's binary", SKIP), async () => {
  await inArena(async (a) => {
    const result = await gcr(["run", "-q", "--rm", a.rootfs, "/proc/self/exe"], { deno: a.deno, rootfsDir: false });
    await assertUntouched(a, result.stdout, describe(result));
    assertEquals(result.code, 127, "/proc/self/exe is gcr's trampoline, which refuses to run", describe(result));
    assertEquals(
      result.stderr,
      "gcr-exec: gcr's exec trampoline runs only as gcr starts a command\n",
      "",
      describe(result),
    );
  });
});

/**
 * The joining attack through gcr's own command line: the probe is a
 * detached container's pid 1, and `gcr exec` sends processes in while it
 * watches. `as`: how gcr is run (rootless: as the test user).
 */
async function joiningAttack(a: Arena, as: GcrOptions): Promise<void> {
  const name = `escape-${as.user ?? "root"}-${Deno.pid}`;
  try {
    const started = await gcr(["run", "-d", "--name", name, a.rootfs, "/probe", "watch", a.target, "4"], as);
    assertEquals(started.code, 0, "gcr run -d", describe(started));
    await waitFor("the probe to watch", async () => {
      const logs = await gcr(["logs", name], as);
      return logs.stdout.includes("probe: watching") || undefined;
    });
    const execs: RunResult[] = [];
    for (let i = 0; i < 5; i++) execs.push(await gcr(["exec", name, "/bin/true"], as));
    assertEquals(execs.map((e) => e.code), [0, 0, 0, 0, 0], "every exec ran", execs.map(describe).join("\n"));
    await waitFor(
      "the probe to end",
      async () => {
        const ps = await gcr(["ps", "-q"], as);
        return ps.stdout.includes(started.stdout.trim()) ? undefined : true;
      },
      20_000,
      200,
    );
    const logs = await gcr(["logs", name], as);
    await assertUntouched(a, logs.stdout, describe(logs));
  } finally {
    await gcr(["rm", "-f", name], as);
  }
}

Deno.test(
  named("gcr run -d + gcr exec: a joining process is never open to the container", SKIP),
  () => inArena((a) => joiningAttack(a, { deno: a.deno, rootfsDir: false })),
);

Deno.test(
  named("rootless gcr run: /proc/self/exe never runs a deno the user owns", rootlessUnavailable() ?? SKIP),
  async () => {
    const account = await ensureUser(RANGED_USER);
    await inArena(async (a) => {
      const entry = await gcr(["run", "-q", "--rm", a.rootfs, "/proc/self/exe"], {
        user: RANGED_USER,
        deno: a.deno,
        rootfsDir: false,
      });
      await assertUntouched(a, entry.stdout, describe(entry));
    }, account);
  },
);

Deno.test(
  named("rootless gcr exec: a joining process is never open to the container", rootlessUnavailable() ?? SKIP),
  async () => {
    await inArena(async (a) => {
      await joiningAttack(a, { user: RANGED_USER, deno: a.deno, rootfsDir: false });
    }, await ensureUser(RANGED_USER));
  },
);
