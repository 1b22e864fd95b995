/**
 * Run by launch/gcr.sh on a fresh `deno bundle --code-splitting` output:
 * fewer modules for each verb to load.
 *
 * Deno pays about 0.1-0.2 ms for every module a process loads (resolve,
 * stat, read, a code-cache lookup, instantiate), on top of what its code
 * costs. esbuild splits shared code into one chunk per set of entry points
 * that use it, so with ~30 lazily imported verbs and helpers `gcr delete`
 * loaded 24 modules, most of them a few KB, and `start` 20. esbuild has no
 * option to join chunks by hand, so this step runs it (`deno bundle`) again
 * on its own output, with what must stay a module of its own marked
 * external. One instance of every module per process is kept: a module's
 * state, and the classes errors are matched by, must not be duplicated.
 *
 * - **core.js**: every chunk main.js imports statically. Every process
 *   loads all of them, so they become one module, and every import of any
 *   of them names core.js instead.
 * - **a verb's own chunks**: a verb that only main.js imports (`import()`
 *   in its COMMANDS table) takes in the chunks it imports statically,
 *   except core.js, what main.js may import beside any verb (the trace
 *   file's opener) and any chunk that code it may import later (`import()`
 *   anywhere in its reach, recursively) also imports: those stay modules,
 *   loaded once.
 *
 * First, each literal dynamic import is made opaque
 * (`import(String("./x.js"))`): Deno walks every import() of a string literal at
 * start-up as if it were static, and esbuild would bundle it.
 *
 * A join that fails leaves those files as the first bundle wrote them, with
 * a warning: that bundle runs too, only slower.
 *
 * @module
 */

const STATIC = /^import\s*(?:\{[^}]*\}\s*from\s*)?"\.\/([^"]+)";$/gm;
const LITERAL = /import\("\.\/([^"]+)"\)/g;
const DYNAMIC = /import\(String\("\.\/([^"]+)"\)\)/g;

interface Chunk {
  imports: string[];
  dynamic: string[];
}

function read(dir: string): Map<string, Chunk> {
  const chunks = new Map<string, Chunk>();
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".js")) continue;
    const text = Deno.readTextFileSync(`${dir}/${entry.name}`);
    chunks.set(entry.name, {
      imports: [...text.matchAll(STATIC)].map((m) => m[1]!),
      dynamic: [...text.matchAll(DYNAMIC)].map((m) => m[1]!),
    });
  }
  return chunks;
}

/** Post-order over static imports from `start`: the order ES modules evaluate in. */
function staticOrder(chunks: Map<string, Chunk>, start: string): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const to of chunks.get(name)?.imports ?? []) visit(to);
    order.push(name);
  };
  visit(start);
  return order;
}

/** Chunks that code in `from`'s static reach may bring in later through import(), with their static imports. */
function lazyReach(chunks: Map<string, Chunk>, from: string): Set<string> {
  const reach = new Set<string>();
  const pending = [from];
  const expanded = new Set<string>();
  while (pending.length) {
    const entry = pending.pop()!;
    if (expanded.has(entry)) continue;
    expanded.add(entry);
    for (const name of staticOrder(chunks, entry)) {
      if (entry !== from) reach.add(name);
      pending.push(...chunks.get(name)?.dynamic ?? []);
    }
  }
  return reach;
}

/** Bundles `entry` (in `dir`) again with `external` left as imports; the result replaces it. */
async function rebundle(dir: string, entry: string, external: Iterable<string>): Promise<string | undefined> {
  const out = `${dir}/.join-${entry}`;
  const args = ["bundle", "--quiet", "--no-config", "--platform", "deno", "--outdir", out];
  for (const name of external) args.push(`--external=./${name}`);
  const result = await new Deno.Command(Deno.execPath(), { args: [...args, `${dir}/${entry}`], stdout: "null" })
    .output();
  try {
    if (!result.success) return `${entry}: ${new TextDecoder().decode(result.stderr).trim().split("\n")[0]}`;
    Deno.renameSync(`${out}/${entry}`, `${dir}/${entry}`);
  } finally {
    try {
      Deno.removeSync(out, { recursive: true });
    } catch { /* bundle failed before writing */ }
  }
}

export async function joinChunks(dir: string, warn: (message: string) => void): Promise<void> {
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".js")) continue;
    const path = `${dir}/${entry.name}`;
    const text = Deno.readTextFileSync(path);
    const opaque = text.replace(LITERAL, (_, to: string) => `import(String("./${to}"))`);
    if (opaque !== text) Deno.writeTextFileSync(path, opaque);
  }
  let chunks = read(dir);
  if (!chunks.has("main.js")) throw new Error(`no main.js in ${dir}`);

  // A module something loads with import() keeps its own file (and name).
  const targets = new Set([...chunks.values()].flatMap((chunk) => chunk.dynamic));
  const core = staticOrder(chunks, "main.js").filter((name) => name !== "main.js" && !targets.has(name));
  if (core.length > 1) {
    Deno.writeTextFileSync(
      `${dir}/core.js`,
      core.map((name) => `export * from ${JSON.stringify(`./${name}`)};\n`).join(""),
    );
    const failed = await rebundle(dir, "core.js", targets);
    if (failed) {
      warn(failed);
      Deno.removeSync(`${dir}/core.js`);
    } else {
      const members = new Set(core);
      for (const name of chunks.keys()) {
        const path = `${dir}/${name}`;
        const text = Deno.readTextFileSync(path);
        const named = text.replace(STATIC, (line, to: string) => members.has(to) ? line.replace(to, "core.js") : line);
        if (named !== text) Deno.writeTextFileSync(path, named);
      }
      for (const name of core) Deno.removeSync(`${dir}/${name}`);
      chunks = read(dir);
    }
  }

  const importedBy = new Map<string, Set<string>>();
  for (const [name, chunk] of chunks) {
    for (const to of [...chunk.imports, ...chunk.dynamic]) {
      importedBy.set(to, (importedBy.get(to) ?? new Set()).add(name));
    }
  }
  // main.js runs one command per process: the imports in its COMMANDS table
  // are verbs, never two in one process. Its other imports (the trace
  // file's opener) may load beside any verb: they, and all they may import,
  // stay modules.
  const mainText = Deno.readTextFileSync(`${dir}/main.js`);
  const table = mainText.match(/^var COMMANDS = \{$[\s\S]*?^\};$/m)?.[0] ?? "";
  const inTable = new Set([...table.matchAll(DYNAMIC)].map((m) => m[1]!));
  const beside = [...new Set([...mainText.replace(table, "").matchAll(DYNAMIC)].map((m) => m[1]!))];
  const loaded = [
    ...staticOrder(chunks, "main.js"),
    ...beside.flatMap((entry) => [entry, ...staticOrder(chunks, entry), ...lazyReach(chunks, entry)]),
  ];
  const verbs = [...inTable].filter((verb) =>
    !loaded.includes(verb) && [...importedBy.get(verb) ?? []].every((by) => by === "main.js")
  );
  if (!table) warn("no COMMANDS table in main.js: no verb joined");
  // Each from the first bundle's layout, so one verb's join does not change another's.
  const plans = verbs.map((verb) => ({ verb, keep: new Set([...loaded, ...lazyReach(chunks, verb)]) }));
  const failures = await Promise.all(plans.map(({ verb, keep }) => rebundle(dir, verb, keep)));
  for (const failed of failures) if (failed) warn(failed);
  // A chunk that only verbs took in is named by nothing now.
  const named = new Set([...read(dir).values()].flatMap((chunk) => [...chunk.imports, ...chunk.dynamic]));
  for (const name of chunks.keys()) {
    if (name.startsWith("chunk-") && !named.has(name)) Deno.removeSync(`${dir}/${name}`);
  }
}

/**
 * Loads every module of the bundle in `dir`, and checks that every import()
 * names a file there: a join that broke a module fails here, not in a verb.
 */
export async function loadAll(dir: string): Promise<void> {
  const chunks = read(dir);
  for (const [name, chunk] of chunks) {
    for (const target of chunk.dynamic) {
      if (!chunks.has(target)) throw new Error(`${name} imports ${target}: no such file`);
    }
  }
  for (const name of chunks.keys()) await import(`${Deno.realPathSync(dir)}/${name}`);
}

if (import.meta.main) {
  if (Deno.args[0] === "--check") await loadAll(Deno.args[1]!);
  else await joinChunks(Deno.args[0]!, (message) => console.error(`gcr: bundle: ${message}`));
}
