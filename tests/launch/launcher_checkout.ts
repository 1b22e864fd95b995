/**
 * A checkout of stand-ins for ./gcr, the launcher (launch/gcr.S): a copy of
 * it, launch/gcr.sh and a "deno" that print what they were given, and a
 * bundle whose stamp is newer than its sources. What a case prints shows
 * which ran; an empty output, that the launcher did the work itself.
 *
 * @module
 */
import { join } from "node:path";
import { LAUNCHER } from "../../ffi/native_build.ts";
import { describe, run } from "../fixtures.ts";
import { assertEquals } from "../helpers.ts";

/** What a stand-in prints: which it is, its arguments one per line, and every GCR_SELF it got. */
const STAND_IN = (name: string) =>
  `#!/bin/sh\necho ${name}\nfor a; do echo "[$a]"; done\nenv | grep '^GCR_SELF=' || true\n`;

export interface Checkout {
  dir: string;
  gcr: string;
  sources: string[];
  stamp: string;
  remove(): void;
}

/** A checkout: the launcher, launch/gcr.sh and a "deno" as stand-ins, a bundle whose stamp is newer than its sources. */
export function checkout(): Checkout {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-launcher-" });
  const gcr = join(dir, "gcr");
  Deno.copyFileSync(LAUNCHER.file, gcr);
  Deno.chmodSync(gcr, 0o755);
  Deno.mkdirSync(join(dir, "launch"));
  Deno.writeTextFileSync(join(dir, "launch", "gcr.sh"), STAND_IN("script"));
  const deno = join(dir, "fake-deno");
  Deno.writeTextFileSync(deno, STAND_IN("deno"), { mode: 0o755 });
  Deno.chmodSync(deno, 0o755);
  const bundle = join(dir, ".cache", "bundle");
  Deno.mkdirSync(bundle, { recursive: true });
  const sources = ["main.ts", "a.ts", "deno.json"].map((name) => join(dir, name));
  const old = new Date(Date.now() - 60_000);
  for (const source of sources) {
    Deno.writeTextFileSync(source, "\n");
    Deno.utimeSync(source, old, old);
  }
  const stamp = join(bundle, "stamp");
  Deno.writeTextFileSync(stamp, "");
  const command = [deno, "run", "-A", join(bundle, "main.js")];
  Deno.writeTextFileSync(join(bundle, "launch"), [...command, "", ...sources].map((f) => f + "\0").join(""));
  return { dir, gcr, sources, stamp, remove: () => Deno.removeSync(dir, { recursive: true }) };
}

/** How a stand-in prints these arguments (STAND_IN): one per line, in brackets. */
export function printedArgs(args: readonly string[]): string {
  return args.map((a) => `[${a}]`).join("\n");
}

/**
 * ./gcr run with these arguments, $GCR_RUN and $GCR_STATE unset unless
 * given: what the stand-ins printed ("" when the launcher did it all).
 */
export async function runLauncher(c: Checkout, args: string[], env: Record<string, string> = {}): Promise<string> {
  const unsetEnv = ["GCR_RUN", "GCR_STATE"].filter((name) => !(name in env));
  const result = await run(c.gcr, args, { env, unsetEnv, cwd: "/", timeoutMs: 30_000 });
  assertEquals(result.code, 0, "./gcr's exit status", describe(result));
  return result.stdout;
}

export async function launch(c: Checkout, args: string[], env: Record<string, string> = {}, unsetEnv: string[] = []) {
  const result = await run(c.gcr, args, { env, unsetEnv, cwd: "/" });
  assertEquals(result.code, 0, "the launcher's exec", describe(result));
  return result.stdout.trimEnd().split("\n");
}
