/**
 * Imports run one way: the commands a user types, then the planning that
 * turns them (and config.json) into a plan, the runner, the subsystems, the
 * steps, and at the bottom libc, the host and what gcr prints. Image code
 * and runtime code meet only through a rootfs path: neither imports the
 * other. Every relative import of every source module is checked, dynamic
 * ones (`import("…")`) too, and each must name a file that exists.
 */
import { dirname, join, normalize, relative } from "node:path";
import { REPO } from "./fixtures.ts";
import { assertEquals } from "./helpers.ts";

/** Each top-level place and its layer: a module may import only from its own folder or a higher number. */
const LAYERS: Record<string, number> = {
  "main.ts": 0,
  commands: 1,
  plan: 2,
  oci: 2,
  image: 2,
  runner: 3,
  cgroup: 4,
  net: 4,
  security: 4,
  state: 5,
  steps: 6,
  ffi: 7,
  host: 7,
  output: 7,
  // The bundle's build step: imports none of gcr.
  launch: 8,
};

/** The runtime side, which must not import image/ (nor image/ it). */
const RUNTIME = ["plan", "oci", "runner", "cgroup", "net", "security", "state", "steps"];

function place(file: string): string {
  return file.includes("/") ? file.slice(0, file.indexOf("/")) : file;
}

function sources(dir = REPO, found: string[] = []): string[] {
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    const rel = relative(REPO, path);
    if (entry.isDirectory) {
      if (entry.name.startsWith(".") || ["tests", "bench", "rootfs", "node_modules"].includes(rel)) continue;
      sources(path, found);
    } else if (entry.name.endsWith(".ts")) {
      found.push(rel);
    }
  }
  return found.sort();
}

/** Relative specifiers a module imports, statically or dynamically. */
function imports(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) found.push(match[1]!);
  return found;
}

Deno.test("every import runs down the layers, image and runtime meet only through a path, and every import exists", () => {
  const problems: string[] = [];
  const files = sources();
  for (const file of files) {
    const from = place(file);
    if (!(from in LAYERS)) problems.push(`${file}: ${from} has no layer (add it to LAYERS in tests/layers_test.ts)`);
    for (const specifier of imports(Deno.readTextFileSync(join(REPO, file)))) {
      const target = normalize(join(dirname(file), specifier));
      try {
        Deno.statSync(join(REPO, target));
      } catch {
        problems.push(`${file}: imports ${specifier}, which does not exist`);
        continue;
      }
      const to = place(target);
      if (to === from) continue;
      if ((LAYERS[to] ?? -1) <= (LAYERS[from] ?? -1)) {
        problems.push(
          `${file} (${from}, layer ${LAYERS[from]}) imports ${target} (${to}, layer ${LAYERS[to]}): upward`,
        );
      }
      if ((from === "image" && RUNTIME.includes(to)) || (RUNTIME.includes(from) && to === "image")) {
        problems.push(`${file} imports ${target}: image code and runtime code meet only through a rootfs path`);
      }
    }
  }
  assertEquals(problems, [], "imports that break the layering");
});
