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
