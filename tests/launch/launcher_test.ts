/**
 * ./gcr, the launcher (launch/gcr.S), in a checkout of stand-ins: its bytes
 * are what the source assembles to; it execs the launch file's command when
 * nothing is newer than the bundle's stamp, and launch/gcr.sh otherwise, each
 * with its own arguments as given and GCR_SELF naming the launcher (once).
 * The stand-ins print what they were given, so each case shows which ran.
 *
 * @module
 */
import { join } from "node:path";
import { elfProgram } from "../../ffi/native_program.ts";
import { assemble, LAUNCHER } from "../../ffi/native_build.ts";
import { describe, missingPrograms, named, run } from "../fixtures.ts";
import { assertEquals } from "../helpers.ts";
import { checkout, launch } from "./launcher_checkout.ts";

Deno.test(named("./gcr is what launch/gcr.S assembles to", missingPrograms("as", "objcopy")), async () => {
  assertEquals(
    Deno.readFileSync(LAUNCHER.file).toBase64(),
    elfProgram(await assemble(LAUNCHER.source)).toBase64(),
    "./gcr is stale: run `deno task native`",
  );
  assertEquals(Deno.statSync(LAUNCHER.file).mode! & 0o111, 0o111, "./gcr is executable");
});

Deno.test("./gcr execs the bundle's command when it is fresh, with the arguments as given and its own GCR_SELF", async () => {
  const c = checkout();
  try {
    const args = ["run", "--rm", "a b", "", "ünï"];
    assertEquals(await launch(c, args, { GCR_SELF: "/elsewhere/gcr" }), [
      "deno",
      "[run]",
      "[-A]",
      `[${c.dir}/.cache/bundle/main.js]`,
      ...args.map((a) => `[${a}]`),
      `GCR_SELF=${c.gcr}`,
    ], "the launch file's command, then the arguments; an inherited GCR_SELF replaced, not repeated");
    const link = join(c.dir, "link-to-gcr");
    Deno.symlinkSync(c.gcr, link);
    const viaLink = await run(link, ["state", "x"], { cwd: "/" });
    assertEquals(viaLink.stdout.trimEnd().split("\n").at(-1), `GCR_SELF=${c.gcr}`, "run through a link: its target");
    assertEquals(viaLink.stdout.split("\n")[0], "deno", "and still the bundle", describe(viaLink));
    Deno.removeSync(c.sources[1]!);
    assertEquals((await launch(c, ["x"]))[0], "deno", "a source that is gone is not newer (as sh's -nt)");
  } finally {
    c.remove();
  }
});

Deno.test("./gcr runs launch/gcr.sh when a source is newer than the bundle, or the bundle cannot be run", async () => {
  const c = checkout();
  try {
    const script = (extra: string[] = []) => ["script", "[state]", "[a b]", ...extra, `GCR_SELF=${c.gcr}`];
    const stampTime = Deno.statSync(c.stamp).mtime!;
    // One nanosecond-resolution step newer: a second of mtime resolution is not assumed.
    Deno.utimeSync(c.sources[2]!, stampTime, new Date(stampTime.getTime() + 1));
    assertEquals(await launch(c, ["state", "a b"]), script(), "deno.json edited after the build");
    Deno.utimeSync(c.sources[2]!, stampTime, new Date(stampTime.getTime() - 60_000));
    assertEquals((await launch(c, ["state", "a b"]))[0], "deno", "fresh again");

    Deno.chmodSync(join(c.dir, "fake-deno"), 0o644);
    assertEquals(await launch(c, ["state", "a b"]), script(), "the command cannot be exec'd (deno moved)");
    Deno.chmodSync(join(c.dir, "fake-deno"), 0o755);

    Deno.removeSync(join(c.dir, ".cache", "bundle", "launch"));
    assertEquals(await launch(c, ["state", "a b"]), script(), "no launch file (a bundle of an older gcr)");
    const empty = join(c.dir, ".cache", "bundle", "launch");
    Deno.writeTextFileSync(empty, "/bin/true\0");
    assertEquals(await launch(c, ["state", "a b"]), script(), "a launch file without its empty field");
  } finally {
    c.remove();
  }
});

Deno.test("./gcr leaves GCR_NO_BUNDLE, and Deno's cache folder without HOME, to launch/gcr.sh", async () => {
  const c = checkout();
  try {
    const which = async (env: Record<string, string>, unset: string[] = []) => (await launch(c, ["v"], env, unset))[0];
    assertEquals(await which({ GCR_NO_BUNDLE: "1" }), "script", "GCR_NO_BUNDLE set: the sources, through the script");
    assertEquals(await which({ GCR_NO_BUNDLE: "" }), "deno", "GCR_NO_BUNDLE empty counts as unset");
    const noCache = ["HOME", "DENO_DIR", "XDG_CACHE_HOME"];
    assertEquals(
      await which({ XDG_RUNTIME_DIR: "/run/user/1000" }, noCache),
      "script",
      "no HOME, DENO_DIR or XDG_CACHE_HOME but a runtime folder (rootless podman's start): the script picks DENO_DIR",
    );
    assertEquals(
      await which({ XDG_RUNTIME_DIR: "/run/user/1000", HOME: "" }, ["DENO_DIR", "XDG_CACHE_HOME"]),
      "script",
    );
    assertEquals(
      await which({ XDG_RUNTIME_DIR: "/run/user/1000", DENO_DIR: "/d" }, ["HOME", "XDG_CACHE_HOME"]),
      "deno",
    );
    assertEquals(await which({}, [...noCache, "XDG_RUNTIME_DIR"]), "deno", "no runtime folder either: Deno's default");
  } finally {
    c.remove();
  }
});

Deno.test("./gcr refuses, with one line and exit 125, more arguments than it copies onto its stack", async () => {
  const c = checkout();
  try {
    const result = await run(c.gcr, Array.from({ length: 131_073 }, () => "x"), { cwd: "/" });
    assertEquals(
      [result.code, result.stdout, result.stderr],
      [125, "", "gcr: more than 131072 arguments and environment variables\n"],
      "refused before anything ran",
    );
    assertEquals((await launch(c, Array.from({ length: 1000 }, () => "x"))).length, 1000 + 5, "1000 are fine");
  } finally {
    c.remove();
  }
});
