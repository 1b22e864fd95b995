/**
 * runc's escapes since CVE-2019-5736 (that one: host_binary_test.ts), tried
 * against gcr as an attacker would set them up, in copies the tests make:
 *
 * - CVE-2024-21626: a descriptor of the runtime's (a host folder) reaching
 *   the container, or a working directory of /proc/self/fd/N leading onto
 *   the host;
 * - CVE-2021-30465: a mount destination that is a symlink, in a volume the
 *   attacker shares, or swapped in between the runtime's check and the
 *   mount, leading the mount out of the container's root;
 * - CVE-2019-16884 and CVE-2019-19921: /proc in the image a symlink, or a
 *   mount over or inside /proc, so the container's /proc is not the
 *   kernel's.
 *
 * @module
 */
import { join } from "node:path";
import {
  BUSYBOX,
  busyboxRootfs,
  copyRootfs,
  describe,
  GCR,
  gcr,
  named,
  needs,
  REPO,
  ROOTFS_DIR,
  run,
  Running,
  type RunResult,
  SCRATCH,
} from "../fixtures.ts";
import { assert, assertEquals, assertMatch, assertNotIncludes, lines } from "../helpers.ts";
import { sleep } from "../../host/time.ts";

const SKIP = needs("setsid");

/** Only stdio and ls's own handle on /proc/self/fd (the lowest free number, 3): nothing of gcr's. */
function assertOnlyStdio(result: RunResult): void {
  assertEquals(result.code, 0, "ls ran", describe(result));
  assertEquals(lines(result.stdout), ["0", "1", "2", "3"], "the command's descriptors", describe(result));
}

Deno.test(
  named("CVE-2024-21626: gcr run and exec give the command no descriptor of gcr's; -w /proc/self/fd/N fails", SKIP),
  async () => {
    await busyboxRootfs();
    assertOnlyStdio(await gcr(["run", "-q", "--rm", "busybox", "ls", "/proc/self/fd"]));
    for (let fd = 3; fd <= 8; fd++) {
      const result = await gcr(["run", "-q", "--rm", "-w", `/proc/self/fd/${fd}`, "busybox", "pwd"]);
      assertEquals(result.code, 125, `-w /proc/self/fd/${fd} is refused`, describe(result));
      assertMatch(
        result.stderr,
        new RegExp(`^gcr: step exec: chdir\\("/proc/self/fd/${fd}"\\): E(NOENT|NOTDIR|BADF) `),
        "chdir failed",
        describe(result),
      );
    }
    const name = `fd-leak-${Deno.pid}`;
    try {
      const started = await gcr(["run", "-d", "--name", name, "busybox", "sleep", "30"]);
      assertEquals(started.code, 0, "run -d", describe(started));
      assertOnlyStdio(await gcr(["exec", name, "ls", "/proc/self/fd"]));
      const cwd = await gcr(["exec", name, "readlink", "/proc/self/cwd"]);
      assertEquals(cwd.stdout, "/\n", "exec starts in the container's /, not gcr's cwd", describe(cwd));
      for (let fd = 3; fd <= 8; fd++) {
        const result = await gcr(["exec", "-w", `/proc/self/fd/${fd}`, name, "pwd"]);
        assertEquals(result.code, 125, `exec -w /proc/self/fd/${fd} is refused`, describe(result));
      }
    } finally {
      await gcr(["rm", "-f", name]);
    }
  },
);

/**
 * A volume `shared` whose `sub` is a symlink to `outside`, an absolute host
 * folder: what an attacker with write access to a shared volume sets up.
 */
function poisonedVolume(): { shared: string; secret: string; outside: string; remove: () => void } {
  const dir = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "cve-2021-30465-" });
  const shared = join(dir, "shared");
  const secret = join(dir, "secret");
  const outside = join(dir, "outside");
  for (const folder of [shared, secret, outside]) Deno.mkdirSync(folder);
  Deno.writeTextFileSync(join(secret, "secret.txt"), "the volume\n");
  Deno.writeTextFileSync(join(outside, "host.txt"), "a host folder\n");
  Deno.symlinkSync(outside, join(shared, "sub"));
  return { shared, secret, outside, remove: () => Deno.removeSync(dir, { recursive: true }) };
}

Deno.test(
  named("CVE-2021-30465: a volume's symlink never takes a nested mount out of the root (gcr run)", SKIP),
  async () => {
    await busyboxRootfs();
    const volume = poisonedVolume();
    try {
      const result = await gcr([
        "run",
        "--trace",
        "--rm",
        "-v",
        `${volume.shared}:/shared`,
        "-v",
        `${volume.secret}:/shared/sub:ro`,
        "busybox",
        "ls",
        "/shared/sub",
      ]);
      // Resolved inside the root, the absolute link names a path the root does not have.
      assertEquals(result.code, 125, "the mount fails closed", describe(result));
      assertMatch(
        lines(result.stderr).at(-1)!,
        /^gcr: step bind-volumes: openat2\(\d+ \/\* root \*\/, "shared\/sub", .*: ENOENT/,
        "one line naming the in-root lookup",
        describe(result),
      );
      assertNotIncludes(result.stderr, `+ mount ${volume.outside}`, "nothing was mounted on the host path", "");
      assertEquals([...Deno.readDirSync(volume.outside)].map((e) => e.name), ["host.txt"], "the host folder as it was");
    } finally {
      volume.remove();
    }
  },
);

/** A bundle for `gcr create`: `runc spec`'s config.json, on a copy of busybox, with `edit` applied. */
// deno-lint-ignore no-explicit-any
async function bundle(edit: (config: Record<string, any>) => void): Promise<{ dir: string; remove: () => void }> {
  const copy = await copyRootfs(BUSYBOX);
  const dir = join(copy.path, "..", "bundle");
  Deno.mkdirSync(dir);
  const spec = await run("runc", ["spec", "--bundle", dir]);
  assertEquals(spec.code, 0, "runc spec", describe(spec));
  const path = join(dir, "config.json");
  const config = JSON.parse(Deno.readTextFileSync(path));
  config.root = { path: copy.path, readonly: false };
  config.process.terminal = false;
  edit(config);
  Deno.writeTextFileSync(path, JSON.stringify(config));
  return { dir, remove: copy.remove };
}

/** `gcr create` then `gcr start` of a bundle with its own --root; the container's output as the result. */
async function createAndStart(dir: string, id: string): Promise<{ create: RunResult; output: string }> {
  const root = join(dir, "state");
  const log = join(dir, "output");
  const create = await run(
    "sh",
    ["-c", `exec '${GCR}' --root '${root}' create --bundle '${dir}' ${id} >'${log}' 2>&1`],
    {
      cwd: REPO,
    },
  );
  if (create.code === 0) {
    await gcr(["--root", root, "start", id]);
    for (let i = 0; i < 100; i++) {
      const state = await gcr(["--root", root, "state", id]);
      if (state.code !== 0 || JSON.parse(state.stdout).status === "stopped") break;
      await sleep(50);
    }
    await gcr(["--root", root, "delete", "--force", id]);
  }
  return { create, output: Deno.readTextFileSync(log) };
}

Deno.test(
  named("CVE-2021-30465: a volume's symlink never takes a nested mount out of the root (OCI)", needs("runc")),
  async () => {
    await busyboxRootfs();
    const volume = poisonedVolume();
    const b = await bundle((config) => {
      config.process.args = ["ls", "/shared/sub"];
      config.mounts.push(
        { destination: "/shared", type: "bind", source: volume.shared, options: ["rbind"] },
        { destination: "/shared/sub", type: "bind", source: volume.secret, options: ["rbind", "ro"] },
      );
    });
    try {
      const { create, output } = await createAndStart(b.dir, "nested");
      assertEquals(create.code !== 0, true, "gcr create fails closed", output);
      assertMatch(output, /openat2\(\d+ \/\* root \*\/, "shared\/sub", .*: ENOENT/, "it names the lookup", output);
      assertEquals([...Deno.readDirSync(volume.outside)].map((e) => e.name), ["host.txt"], "the host folder as it was");
    } finally {
      b.remove();
      volume.remove();
    }
  },
);

/**
 * gcr run --step on a copy of the image (--rootfs-copy: the root is a plain
 * folder the test can reach), with `swap` called at the prompt of step
 * `before`: a race won by the attacker every time.
 */
async function raceAtStep(before: string, args: string[], swap: (root: string) => void): Promise<RunResult> {
  const state = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "race-state-" });
  try {
    const running = new Running(
      "setsid",
      ["-w", GCR, "run", "--rootfs-dir", ROOTFS_DIR, "--step", "--rootfs-copy", ...args],
      { cwd: REPO, stdinPipe: true, env: { GCR_STATE: state }, timeoutMs: 60_000 },
    );
    // Each prompt that waits for Enter (steps that run ahead do not), in order.
    const waiting = /^\[\d+\/\d+\] ([a-z-]+): (?!.*\(runs at once\)$)/gm;
    const deadline = performance.now() + 30_000;
    for (let answered = 0; !running.exited && performance.now() < deadline;) {
      const prompts = [...running.stderr.matchAll(waiting)].map((match) => match[1]!);
      const ready = running.stderr.split("press Enter").length - 1;
      if (ready > answered) {
        if (prompts[answered] === before) {
          const [id] = [...Deno.readDirSync(join(state, "containers"))].map((e) => e.name);
          swap(join(state, "containers", id!, "merged"));
        }
        answered++;
        await running.write("\n");
      } else {
        await sleep(10);
      }
    }
    return await running.finish();
  } finally {
    Deno.removeSync(state, { recursive: true });
  }
}

Deno.test(
  named("CVE-2019-16884: /proc swapped for a symlink just before mount-proc: the mount refuses it", SKIP),
  async () => {
    await busyboxRootfs();
    const result = await raceAtStep("mount-proc", ["busybox", "true"], (root) => {
      Deno.removeSync(join(root, "proc"));
      Deno.symlinkSync("etc", join(root, "proc"));
    });
    assertEquals(result.code, 125, "the run fails closed", describe(result));
    assertMatch(
      result.stderr,
      /^gcr: step mount-proc: openat2\(\d+ \/\* root \*\/, "proc", \{O_PATH\|O_CLOEXEC, [A-Z_|]*RESOLVE_NO_SYMLINKS\}.*: ELOOP/m,
      "one line naming the lookup that refused the symlink",
      describe(result),
    );
  },
);

Deno.test(
  named("CVE-2021-30465: a volume's mount point swapped for a symlink just before bind-volumes stays inside", SKIP),
  async () => {
    await busyboxRootfs();
    const volume = poisonedVolume();
    try {
      const result = await raceAtStep(
        "bind-volumes",
        ["-v", `${volume.secret}:/data`, "busybox", "cat", "/data/secret.txt"],
        (root) => {
          Deno.removeSync(join(root, "data"), { recursive: true });
          Deno.symlinkSync(volume.outside, join(root, "data"));
        },
      );
      assertEquals(result.code, 125, "the run fails closed", describe(result));
      assertMatch(result.stderr, /^gcr: step bind-volumes: openat2\(.*"data".*: ENOENT/m, "in-root lookup", "");
      assertEquals([...Deno.readDirSync(volume.outside)].map((e) => e.name), ["host.txt"], "the host folder as it was");
    } finally {
      volume.remove();
    }
  },
);

Deno.test(
  named("CVE-2019-19921: nothing but proc over /proc, and inside it only what lxcfs emulates (OCI)", needs("runc")),
  async () => {
    await busyboxRootfs();
    const host = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "fake-proc-" });
    Deno.writeTextFileSync(join(host, "cpuinfo"), "fake cpuinfo\n");
    try {
      const cases: [string, Record<string, unknown>, RegExp][] = [
        [
          "a bind over /proc",
          { destination: "/proc", type: "bind", source: host, options: ["rbind"] },
          /mounts\[\d+\]\.destination "\/proc" cannot be mounted over \/proc: it is not of type proc/,
        ],
        [
          "a tmpfs inside /proc",
          { destination: "/proc/sys", type: "tmpfs", source: "tmpfs", options: [] },
          /mounts\[\d+\]\.destination "\/proc\/sys" cannot be mounted inside \/proc/,
        ],
      ];
      for (const [what, mount, message] of cases) {
        const b = await bundle((config) => config.mounts.push(mount));
        try {
          const { create, output } = await createAndStart(b.dir, "proc");
          assert(create.code !== 0, `${what} is refused`, output);
          assertMatch(output, message, `${what}: the message names the field`, output);
        } finally {
          b.remove();
        }
      }
      const lxcfs = await bundle((config) => {
        config.process.args = ["cat", "/proc/cpuinfo"];
        config.mounts.push({
          destination: "/proc/cpuinfo",
          type: "bind",
          source: join(host, "cpuinfo"),
          options: ["bind"],
        });
      });
      try {
        const { create, output } = await createAndStart(lxcfs.dir, "lxcfs");
        assertEquals(create.code, 0, "a file lxcfs emulates may be bound over /proc/cpuinfo", output);
        assertEquals(output, "fake cpuinfo\n", "the container reads it", output);
      } finally {
        lxcfs.remove();
      }
      const linked = await bundle((config) => {
        const root = config.root.path as string;
        Deno.removeSync(join(root, "proc"));
        Deno.symlinkSync("etc", join(root, "proc"));
      });
      try {
        const { create, output } = await createAndStart(linked.dir, "linked");
        assert(create.code !== 0, "a root whose /proc is a symlink is refused", output);
        assertMatch(output, /must be an ordinary folder for a proc mount \(\/proc is not\)/, "", output);
      } finally {
        linked.remove();
      }
    } finally {
      Deno.removeSync(host, { recursive: true });
    }
  },
);
