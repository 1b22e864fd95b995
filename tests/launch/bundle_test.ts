/**
 * ./gcr (through launch/gcr.sh) runs a bundle of gcr's sources and rebuilds it when any
 * of them changed: at any depth of the tree, not only the first two, and
 * launch/gcr.sh itself.
 */
import { join } from "node:path";
import { describe, REPO, run } from "../fixtures.ts";
import { assertEquals } from "../helpers.ts";

/** A copy of the sources (no .git, no .cache, no images) in a new folder. */
async function copyOfSources(): Promise<{ dir: string; remove: () => void }> {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-script-" });
  const names = [...Deno.readDirSync(REPO)].map((e) => e.name).filter((n) => ![".git", ".cache", "rootfs"].includes(n));
  const copy = await run("cp", ["-r", ...names.map((n) => join(REPO, n)), dir]);
  assertEquals(copy.code, 0, "cp", describe(copy));
  return { dir, remove: () => Deno.removeSync(dir, { recursive: true }) };
}

Deno.test("gcr's bundle is rebuilt when a module two folders deep changes, from any working directory", async () => {
  const { dir, remove } = await copyOfSources();
  try {
    const nested = join(dir, "deeper", "still");
    Deno.mkdirSync(nested, { recursive: true });
    const marker = join(nested, "marker.ts");
    Deno.writeTextFileSync(marker, 'export const MARKER = "first";\n');
    const main = join(dir, "main.ts");
    Deno.writeTextFileSync(
      main,
      'import { MARKER } from "./deeper/still/marker.ts";\nconsole.error(`marker: ${MARKER}`);\n' +
        Deno.readTextFileSync(main),
    );
    const gcr = join(dir, "gcr");
    const first = await run(gcr, ["--version"], { cwd: "/" });
    assertEquals(
      [first.code, first.stderr],
      [0, "marker: first\n"],
      "built, with the module as it was",
      describe(first),
    );
    assertEquals(Deno.statSync(join(dir, ".cache", "bundle", "main.js")).isFile, true, "it runs a bundle");
    const bundled = Deno.readTextFileSync(join(dir, ".cache", "bundle", "main.js"));
    const imported = [...bundled.matchAll(/^import\s*(?:\{[^}]*\}\s*from\s*)?"\.\/([^"]+)";$/gm)].map((m) => m[1]);
    assertEquals(new Set(imported), new Set(["core.js"]), "its chunks joined (launch/join_chunks.ts)");

    // Only the nested module changes; a second of mtime resolution is not assumed.
    const built = Deno.statSync(join(dir, ".cache", "bundle", "stamp")).mtime!;
    Deno.writeTextFileSync(marker, 'export const MARKER = "second";\n');
    Deno.utimeSync(marker, new Date(), new Date(built.getTime() + 2000));
    const second = await run(gcr, ["--version"], { cwd: dir });
    assertEquals(
      [second.code, second.stderr],
      [0, "marker: second\n"],
      "rebuilt for the nested edit",
      describe(second),
    );
    const third = await run(gcr, ["--version"], { cwd: "/tmp" });
    assertEquals(third.stderr, "marker: second\n", "and fresh from then on", describe(third));

    // launch/gcr.sh writes the command ./gcr execs: an edit to it counts as one to the sources.
    const rebuilt = Deno.statSync(join(dir, ".cache", "bundle", "stamp")).mtime!;
    const script = join(dir, "launch", "gcr.sh");
    Deno.utimeSync(script, new Date(), new Date(rebuilt.getTime() + 2000));
    const fourth = await run(gcr, ["--version"], { cwd: "/" });
    assertEquals(fourth.code, 0, "after an edit of launch/gcr.sh", describe(fourth));
    const stamp = Deno.statSync(join(dir, ".cache", "bundle", "stamp")).mtime!;
    assertEquals(stamp > rebuilt, true, `rebuilt for it (stamp ${rebuilt.toISOString()} then ${stamp.toISOString()})`);
  } finally {
    remove();
  }
});

Deno.test("a fresh bundle whose launch names a deno that is gone gets its launch written again, not rebuilt", async () => {
  const { dir, remove } = await copyOfSources();
  try {
    const gcr = join(dir, "gcr");
    const built = await run(gcr, ["--version"], { cwd: "/" });
    assertEquals(built.code, 0, "built", describe(built));
    const launchFile = join(dir, ".cache", "bundle", "launch");
    const fields = () => Deno.readTextFileSync(launchFile).split("\0");
    const before = fields();
    const stamp = Deno.statSync(join(dir, ".cache", "bundle", "stamp")).mtime!;
    // What a run with a test's copy of deno on PATH leaves behind once the copy is removed.
    Deno.writeTextFileSync(launchFile, ["/nonexistent/bin/deno", ...before.slice(1)].join("\0"));
    const again = await run(gcr, ["--version"], { cwd: "/" });
    assertEquals([again.code, again.stdout.startsWith("gcr version ")], [0, true], "still runs", describe(again));
    assertEquals(fields(), before, "./gcr execs the deno on PATH again from the next run");
    assertEquals(Deno.statSync(join(dir, ".cache", "bundle", "stamp")).mtime, stamp, "the bundle itself was kept");
  } finally {
    remove();
  }
});

Deno.test("a build leaves nothing in Deno's code cache under its temporary folder; the bundle's own runs do", async () => {
  const { dir, remove } = await copyOfSources();
  // A Deno cache of the test's own, sharing the user's downloads (deno bundle's esbuild).
  const denoDir = Deno.makeTempDirSync({ prefix: "gcr-deno-dir-" });
  try {
    const info = await run("deno", ["info", "--json"]);
    const userDenoDir = JSON.parse(info.stdout).denoDir as string;
    Deno.symlinkSync(join(userDenoDir, "dl"), join(denoDir, "dl"));
    const built = await run(join(dir, "gcr"), ["--version"], { env: { DENO_DIR: denoDir } });
    assertEquals(built.code, 0, "built and ran", describe(built));
    // A verb that loads its chunk (--version's run ends before Deno writes its cache).
    const again = await run(join(dir, "gcr"), ["features"], { env: { DENO_DIR: denoDir } });
    assertEquals(again.code, 0, "ran the bundle", describe(again));
    const cache = join(denoDir, "v8_code_cache_v2");
    const listed = await run("sqlite3", ["-readonly", cache, "select specifier from codecache"]);
    assertEquals(listed.code, 0, `Deno's code cache is ${cache}, a table codecache`, describe(listed));
    const specifiers = listed.stdout.split("\n").filter(Boolean);
    const bundle = `file://${dir}/.cache/bundle`;
    assertEquals(specifiers.includes(`${bundle}/main.js`), true, "the bundle's run is cached", specifiers.join("\n"));
    assertEquals(
      specifiers.filter((s) => s.startsWith(`${bundle}.`)),
      [],
      "nothing under the build's temporary folder (.cache/bundle.<pid>), which no run loads again",
    );
  } finally {
    remove();
    Deno.removeSync(denoDir, { recursive: true });
  }
});
