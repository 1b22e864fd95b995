/**
 * The OCI runtime-tools validation suite (opencontainers/runtime-tools at
 * 260e151, Apache-2.0; its source with its Go modules vendored is the
 * tarball beside this file, the last commit that builds with Debian 12's
 * Go 1.19 without fetching anything), built once and run test by test
 * against a runtime, the way the suite's own `make localvalidation` would
 * run it but one test at a time, so that each gets a verdict.
 *
 * Each test runs from the suite's folder (it finds its rootfs tarball and
 * `runtimetest` there) with RUNTIME set, a fresh TMPDIR for its bundles, in
 * a mount namespace of its own (a test that fails half way would otherwise
 * leave its mounts on the host), for 120 s at most.
 *
 * Usable by hand too: `deno run -A tests/conformance/runtime_tools.ts
 * ./gcr [test…]` prints a line per test.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { exists } from "../../host/files.ts";

const TARBALL = join(dirname(fileURLToPath(import.meta.url)), "runtime-tools-260e151.tar.gz");

/** Where the built suite is kept between runs. */
export const SUITE_DIR = Deno.env.get("RTT_CACHE") ?? "/var/tmp/gcr-runtime-tools-260e151";

/** What a test's TAP said, and gcr's verdict on it. */
export interface TestResult {
  readonly name: string;
  readonly ok: number;
  readonly notOk: number;
  /** The test program's exit status (124: killed at 120 s). */
  readonly code: number;
  /** A YAML block: the tests write one for every failure they report without a `not ok` line. */
  readonly diagnostics: boolean;
  /**
   * `pass`: some `ok` lines, no `not ok`, status 0 (the shared runner's
   * "fully passes"). `pass-unchecked`: no `ok` or `not ok` line, status 0
   * and no diagnostics: the test found nothing wrong but, as written, never
   * reports a success (the hook tests do this). `fail`: anything else.
   */
  readonly verdict: "pass" | "pass-unchecked" | "fail";
  readonly tap: string;
}

async function sh(program: string, args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command(program, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n");
    throw new Error(`${program} ${args.join(" ")} failed:\n${text}`);
  }
}

/** Why the suite cannot be built here (no Go), or undefined. */
export function missingGo(): string | undefined {
  return new Deno.Command("sh", { args: ["-c", "command -v go"], stdout: "null" }).outputSync().success
    ? undefined
    : "no Go compiler (Debian's golang-go builds the suite)";
}

/** Builds the suite into SUITE_DIR unless it is there: the test programs and `runtimetest`. */
export async function buildSuite(): Promise<string> {
  if (exists(join(SUITE_DIR, "runtimetest")) && exists(join(SUITE_DIR, "validation", "state", "state.t"))) {
    return SUITE_DIR;
  }
  const building = `${SUITE_DIR}.build-${Deno.pid}`;
  Deno.mkdirSync(building, { recursive: true });
  try {
    await sh("tar", ["-xzf", TARBALL, "-C", building, "--strip-components=1"]);
    // GOFLAGS=-mod=vendor and GOPROXY=off: the modules are in the tarball; nothing is fetched.
    await sh("env", [
      "GOFLAGS=-mod=vendor",
      "GOPROXY=off",
      `GOCACHE=${building}/.gocache`,
      "make",
      "runtimetest",
      "validation-executables",
    ], building);
    await Deno.remove(`${building}/.gocache`, { recursive: true });
    try {
      Deno.renameSync(building, SUITE_DIR);
    } catch (error) {
      if (!exists(join(SUITE_DIR, "runtimetest"))) throw error; // another run finished first
      await Deno.remove(building, { recursive: true });
    }
  } catch (error) {
    await Deno.remove(building, { recursive: true }).catch(() => {});
    throw error;
  }
  return SUITE_DIR;
}

/** The suite's test names (its `validation/<name>/<name>.t` programs). */
export function testNames(suite: string): string[] {
  return [...Deno.readDirSync(join(suite, "validation"))]
    .filter((entry) => entry.isDirectory && exists(join(suite, "validation", entry.name, `${entry.name}.t`)))
    .map((entry) => entry.name)
    .sort();
}

/** Runs one test against `runtime` (an absolute path). */
export async function runTest(suite: string, runtime: string, name: string): Promise<TestResult> {
  const tmp = Deno.makeTempDirSync({ dir: "/var/tmp", prefix: "gcr-rtt-" });
  try {
    const out = await new Deno.Command("timeout", {
      args: ["120", "unshare", "-m", "--propagation", "private", join(suite, "validation", name, `${name}.t`)],
      cwd: suite,
      env: { RUNTIME: runtime, TMPDIR: tmp },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const tap = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const ok = tap.split("\n").filter((line) => /^ok\b/.test(line)).length;
    const notOk = tap.split("\n").filter((line) => /^not ok\b/.test(line)).length;
    const diagnostics = /^\s+---$/m.test(tap);
    const verdict = ok > 0 && notOk === 0 && out.code === 0
      ? "pass"
      : ok === 0 && notOk === 0 && out.code === 0 && !diagnostics
      ? "pass-unchecked"
      : "fail";
    return { name, ok, notOk, code: out.code, diagnostics, verdict, tap };
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
}

if (import.meta.main) {
  const [runtime, ...names] = Deno.args;
  if (!runtime) {
    console.error("usage: deno run -A tests/conformance/runtime_tools.ts RUNTIME [TEST…]");
    Deno.exit(2);
  }
  const suite = await buildSuite();
  for (const name of names.length ? names : testNames(suite)) {
    const r = await runTest(suite, Deno.realPathSync(runtime), name);
    console.log(`${r.verdict.padEnd(14)} ${name} ok=${r.ok} notok=${r.notOk} rc=${r.code}`);
  }
}
