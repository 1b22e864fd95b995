/**
 * launch/join_chunks.ts on a small bundle shaped as esbuild writes gcr's: main.js with
 * its COMMANDS table and core chunks, two verbs sharing a chunk with state, a lazily
 * imported module that shares it too, and an import beside the verbs (as the trace file's
 * opener is), and a module main.js imports that a verb also loads with import(). The joins must change how many modules load, never what runs: a module
 * with state stays one instance wherever two files can load in one process.
 *
 * @module
 */
import { join } from "node:path";
import { joinChunks } from "../../launch/join_chunks.ts";
import { describe, run } from "../fixtures.ts";
import { assertEquals } from "../helpers.ts";

/** The bundle: each verb prints its counters, which show whether its modules were loaded once. */
const BUNDLE: Record<string, string> = {
  "a.js":
    'import { bump } from "./chunk-STATE.js";\nimport { tally } from "./chunk-PRIVATE.js";\nimport { prefix } from "./chunk-CORE2.js";\nasync function aCommand() { bump(); tally(); return (await import("./lazy.js")).bumpAgain() + tally() * 10 + (prefix === "n=" ? 0 : 1000) + (await import("./helper.js")).offset(); }\nexport { aCommand };\n',
  "b.js":
    'import { bump } from "./chunk-STATE.js";\nimport { tally } from "./chunk-PRIVATE.js";\nasync function bCommand() { bump(); return tally() * 10 + bump(); }\nexport { bCommand };\n',
  "beside.js":
    'import { tally } from "./chunk-PRIVATE.js";\nfunction besideCount() { return tally(); }\nexport { besideCount };\n',
  "chunk-CORE1.js":
    'import { prefix } from "./chunk-CORE2.js";\nfunction say(n, beside) { return `${prefix}${n} ${beside}`; }\nexport { say };\n',
  "chunk-CORE2.js": 'var prefix = "n=";\nexport { prefix };\n',
  "chunk-PRIVATE.js": "var calls = 0;\nfunction tally() { return ++calls; }\nexport { tally };\n",
  "chunk-STATE.js": "var count = 0;\nfunction bump() { return ++count; }\nexport { bump };\n",
  "helper.js": "var calls = 0;\nfunction offset() { return 100 * calls++; }\nexport { offset };\n",
  "lazy.js":
    'import { bump } from "./chunk-STATE.js";\nfunction bumpAgain() { return bump(); }\nexport { bumpAgain };\n',
  "main.js":
    'import { say } from "./chunk-CORE1.js";\nimport "./chunk-CORE2.js";\nimport { offset } from "./helper.js";\n\n// main.ts\nvar COMMANDS = {\n  a: async (args) => (await import("./a.js")).aCommand(args),\n  b: async (args) => (await import("./b.js")).bCommand(args)\n};\nasync function main(argv) {\n  const beside = argv.includes("--beside") ? (await import("./beside.js")).besideCount() : 0;\n  offset();\n  return say(await COMMANDS[argv[0]](argv), beside);\n}\nif (import.meta.main) {\n  console.log(await main(Deno.args));\n}\n',
};

/** What each command prints, run through the bundle's main.js. */
async function outputs(dir: string): Promise<string[]> {
  const printed: string[] = [];
  for (const args of [["a"], ["b"], ["a", "--beside"], ["b", "--beside"]]) {
    const result = await run(Deno.execPath(), ["run", "-A", "--no-config", "--quiet", join(dir, "main.js"), ...args]);
    assertEquals(result.code, 0, `main.js ${args.join(" ")}`, describe(result));
    printed.push(`${args.join(" ")}: ${result.stdout.trim()}`);
  }
  return printed;
}

/** The modules a file imports statically. */
function staticImports(dir: string, name: string): string[] {
  const text = Deno.readTextFileSync(join(dir, name));
  return [...new Set([...text.matchAll(/^import\s*(?:\{[^}]*\}\s*from\s*)?"\.\/([^"]+)";$/gm)].map((m) => m[1]!))]
    .sort();
}

Deno.test("join_chunks: fewer modules per verb, the same output, one instance of each module with state", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-join-" });
  try {
    for (const [name, text] of Object.entries(BUNDLE)) Deno.writeTextFileSync(join(dir, name), text);
    const before = await outputs(dir);
    assertEquals(
      before,
      ["a: n=122 0", "b: n=12 0", "a --beside: n=132 1", "b --beside: n=22 1"],
      "as esbuild wrote it (a's 100: helper.js, main's import and a's import(), is one module)",
    );
    const warnings: string[] = [];
    await joinChunks(dir, (message) => warnings.push(message));
    assertEquals(warnings, []);
    assertEquals(await outputs(dir), before, "joined: the same counts, so no module with state was loaded twice");
    assertEquals(staticImports(dir, "main.js"), ["core.js", "helper.js"], "main.js's chunks are one module");
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith("chunk-CORE")), []);
    assertEquals(staticImports(dir, "b.js"), ["chunk-PRIVATE.js"], "b took in the state chunk only it loads");
    assertEquals(
      staticImports(dir, "a.js"),
      ["chunk-PRIVATE.js", "chunk-STATE.js", "core.js"],
      "a keeps what lazy.js (its import()) and beside.js (main's, beside any verb) also import",
    );
    assertEquals(Deno.readTextFileSync(join(dir, "main.js")).includes('import(String("./a.js"))'), true, "opaque");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
