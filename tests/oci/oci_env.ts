/**
 * What the OCI tests share: bundles made by `umoci unpack` (an independent
 * tool) from an OCI layout built with umoci out of the tests' busybox
 * rootfs, and {@link Oci}, one test's runtime folder, scratch folder and
 * containers, driven the way an engine drives gcr (each call with its own
 * `--root`), all removed at the end.
 *
 * The layout is kept in $GCR_TEST_CACHE/oci-runtime/ between runs.
 *
 * @module
 */
import { dirname, join } from "node:path";
import {
  BUSYBOX,
  busyboxRootfs,
  describe,
  FIXTURES,
  GCR,
  gcr,
  isDead,
  liveProcessesWith,
  needs,
  REPO,
  run,
  type RunResult,
  SCRATCH,
  STATE_DIR,
} from "../fixtures.ts";
import { assert, assertEquals, lines } from "../helpers.ts";
import { exists, readTextOr } from "../../host/files.ts";
import { sleep } from "../../host/time.ts";

// deno-lint-ignore no-explicit-any
export type Json = any;

export const SKIP = needs("umoci", "python3");
const LAYOUT = join(FIXTURES, "oci-runtime", "busybox-layout");
const TAG = "t";
export const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export async function must(program: string, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  const result = await run(program, args, { timeoutMs });
  assertEquals(result.code, 0, `${program} failed`, describe(result));
  return result;
}

let layoutBuilt: Promise<string> | undefined;
/** An OCI layout (tag `t`) with one layer, the busybox rootfs, made by umoci; cached. */
function busyboxLayout(): Promise<string> {
  return layoutBuilt ??= (async () => {
    if (exists(join(LAYOUT, "index.json"))) return LAYOUT;
    await busyboxRootfs();
    Deno.mkdirSync(dirname(LAYOUT), { recursive: true });
    const tmp = Deno.makeTempDirSync({ dir: dirname(LAYOUT), prefix: ".build-" });
    try {
      const layout = join(tmp, "layout");
      const image = `${layout}:${TAG}`;
      await must("umoci", ["init", "--layout", layout]);
      await must("umoci", ["new", "--image", image]);
      await must("umoci", ["unpack", "--image", image, join(tmp, "b0")]);
      await must("cp", ["-a", `${BUSYBOX}/.`, join(tmp, "b0", "rootfs") + "/"]);
      await must("umoci", ["repack", "--image", image, join(tmp, "b0")]);
      await must("umoci", ["config", "--image", image, "--config.cmd", "sh", "--config.env", PATH_ENV]);
      await must("umoci", ["gc", "--layout", layout]);
      try {
        Deno.renameSync(layout, LAYOUT);
      } catch (error) {
        if (!exists(join(LAYOUT, "index.json"))) throw error; // another run won the race
      }
    } finally {
      Deno.removeSync(tmp, { recursive: true });
    }
    return LAYOUT;
  })();
}

/** The cgroup folders of a live process in each v1 hierarchy (from /proc/<pid>/cgroup), but the test's own. */
export function cgroupFoldersOf(pid: number): string[] {
  const own = new Set(lines(readTextOr("/proc/self/cgroup")));
  return lines(readTextOr(`/proc/${pid}/cgroup`))
    .filter((line) => !own.has(line))
    .map((line) => line.split(":"))
    .filter(([, controllers]) => controllers)
    .map(([, controllers, path]) => `/sys/fs/cgroup/${controllers!.replace(/^name=/, "")}${path}`);
}

/** The folders gcr makes by default (`gcr/<id>` below the caller's cgroup) in every v1 hierarchy. */
function defaultCgroupFolders(id: string): string[] {
  return lines(readTextOr("/proc/self/cgroup"))
    .map((line) => line.split(":"))
    .filter(([, controllers]) => controllers)
    .map(([, controllers, path]) =>
      `/sys/fs/cgroup/${controllers!.replace(/^name=/, "")}${path === "/" ? "" : path}/gcr/${id}`
    );
}

export interface Created extends RunResult {
  /** Files holding create's stdout and stderr, which the container inherits. */
  outFile: string;
  errFile: string;
}

/** One test's runtime folder (--root), scratch folder and containers; cleanup removes them all. */
export class Oci {
  readonly root = Deno.makeTempDirSync({ prefix: "gcr-oci-root-" });
  readonly work: string;
  readonly ids: string[] = [];
  /** Host pids of container processes seen, killed at cleanup if still alive. */
  readonly pids: number[] = [];
  #bundles = 0;
  #outputs = 0;

  constructor() {
    Deno.mkdirSync(SCRATCH, { recursive: true });
    this.work = Deno.realPathSync(Deno.makeTempDirSync({ dir: SCRATCH, prefix: "oci-" }));
  }

  newId(): string {
    const id = `oci-${crypto.randomUUID().slice(0, 8)}`;
    this.ids.push(id);
    return id;
  }

  /** `umoci unpack` of the layout into a new bundle, config.json edited by `edit` (terminal off first). */
  async bundle(edit: (config: Json) => void = () => {}): Promise<string> {
    const layout = await busyboxLayout();
    const dir = join(this.work, `bundle${this.#bundles++}`);
    await must("umoci", ["unpack", "--image", `${layout}:${TAG}`, dir]);
    const config = JSON.parse(Deno.readTextFileSync(join(dir, "config.json")));
    config.process.terminal = false;
    edit(config);
    Deno.writeTextFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
    return dir;
  }

  /** A host folder for bind mounts. */
  folder(name: string): string {
    const dir = join(this.work, name);
    Deno.mkdirSync(dir);
    return dir;
  }

  /** `gcr --root R <args>` with piped output (for commands that leave no process holding it). */
  gcr(args: string[], timeoutMs = 30_000, stdin?: string): Promise<RunResult> {
    return gcr(["--root", this.root, ...args], { timeoutMs, ...(stdin === undefined ? {} : { stdin }) });
  }

  async gcrOk(args: string[]): Promise<RunResult> {
    const result = await this.gcr(args);
    assertEquals(result.code, 0, `gcr ${args[0]} should succeed`, describe(result));
    return result;
  }

  /**
   * `gcr --root R <args>` with stdout and stderr going to files (for
   * create and exec --detach, whose container processes inherit them).
   */
  async toFiles(args: string[], timeoutMs = 30_000): Promise<Created> {
    const n = this.#outputs++;
    const outFile = join(this.work, `out${n}`);
    const errFile = join(this.work, `err${n}`);
    const result = await run(
      "sh",
      [
        "-c",
        'out=$1 err=$2; shift 2; exec "$@" >"$out" 2>"$err"',
        "sh",
        outFile,
        errFile,
        GCR,
        "--root",
        this.root,
        ...args,
      ],
      { cwd: REPO, env: { GCR_STATE: STATE_DIR }, timeoutMs },
    );
    return { ...result, stdout: readTextOr(outFile), stderr: readTextOr(errFile), outFile, errFile };
  }

  async create(id: string, bundle: string, extra: string[] = []): Promise<Created> {
    return await this.toFiles(["create", "--bundle", bundle, ...extra, id]);
  }

  async createOk(id: string, bundle: string, extra: string[] = []): Promise<{ created: Created; pid: number }> {
    const created = await this.create(id, bundle, extra);
    assertEquals(created.code, 0, "gcr create should succeed", describe(created));
    const state = await this.state(id);
    assertEquals(state.status, "created", "state after create", JSON.stringify(state));
    this.pids.push(state.pid);
    return { created, pid: state.pid };
  }

  /** create + start: the container's init pid. */
  async launch(id: string, bundle: string, extra: string[] = []): Promise<{ created: Created; pid: number }> {
    const launched = await this.createOk(id, bundle, extra);
    await this.gcrOk(["start", id]);
    return launched;
  }

  async state(id: string): Promise<Json> {
    const result = await this.gcr(["state", id]);
    assertEquals(result.code, 0, "gcr state should succeed", describe(result));
    return JSON.parse(result.stdout);
  }

  async waitStatus(id: string, status: string, timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const last = (await this.state(id)).status;
      if (last === status) return;
      assert(performance.now() < deadline, `container ${id} should be ${status} within ${timeoutMs} ms (is ${last})`);
      await sleep(50);
    }
  }

  /** create, start, wait until stopped, delete: create's stdout and stderr (the container's). */
  async runToEnd(bundle: string, extra: string[] = []): Promise<{ stdout: string; stderr: string }> {
    const id = this.newId();
    const { created } = await this.launch(id, bundle, extra);
    await this.waitStatus(id, "stopped");
    await this.gcrOk(["delete", id]);
    return { stdout: readTextOr(created.outFile), stderr: readTextOr(created.errFile) };
  }

  /** Nothing of `id` left: no record folder, no process of its pids, no cgroup folder. */
  assertGone(id: string, pids: number[] = [], cgroups: string[] = []): void {
    assert(!exists(join(this.root, id)), `the record folder ${join(this.root, id)} should be gone`);
    for (const pid of pids) assert(isDead(pid), `process ${pid} of ${id} should be gone`);
    assertEquals(liveProcessesWith(id), [], `no process should mention ${id}`);
    for (const dir of [...cgroups, ...defaultCgroupFolders(id)]) {
      assert(!exists(dir), `cgroup folder ${dir} should be gone`);
    }
  }

  async cleanup(): Promise<void> {
    for (const id of this.ids) {
      if (exists(join(this.root, id))) await this.gcr(["delete", "--force", id]).catch(() => {});
    }
    for (const pid of this.pids) {
      if (!isDead(pid)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
    Deno.removeSync(this.root, { recursive: true });
    Deno.removeSync(this.work, { recursive: true });
  }
}

/** The same verb with each runtime, each with its own --root (and the same stdin, if any). */
export type Both = (args: string[], stdin?: string) => Promise<{ runc: RunResult; gcr: RunResult }>;

export function both(o: Oci, runcRoot: string): Both {
  return async (args, stdin) => ({
    runc: await run("runc", ["--root", runcRoot, ...args], stdin === undefined ? {} : { stdin }),
    gcr: await o.gcr(args, undefined, stdin),
  });
}

/**
 * create, whose container keeps the stdout and stderr it was given: to
 * files, so that reading them does not wait for the container to end.
 */
export async function createBoth(o: Oci, runcRoot: string, bundle: string, id: string) {
  const runcOut = join(o.work, "runc-create.err");
  const runc = await run("sh", [
    "-c",
    'err=$1; shift; exec "$@" >/dev/null 2>"$err"',
    "sh",
    runcOut,
    "runc",
    "--root",
    runcRoot,
    "create",
    "--bundle",
    bundle,
    id,
  ]);
  const gcr = await o.create(id, bundle);
  return { runc: { ...runc, stderr: readTextOr(runcOut) }, gcr };
}

export async function withOci(fn: (o: Oci) => Promise<void>): Promise<void> {
  const o = new Oci();
  try {
    await fn(o);
  } finally {
    await o.cleanup();
  }
}

export const sh = (script: string) => ["sh", "-c", script];
