// The compiled-filter cache: used only for exactly the same profile, and
// only from a folder no other user can write.
import { resolveCapabilities } from "../../security/capabilities.ts";
import { compileProfile } from "../../security/seccomp/compile.ts";
import { seccompProgram } from "../../security/seccomp/docker.ts";
import { defaultProfile } from "../../security/seccomp/profile.ts";
import { assert, assertEquals } from "../helpers.ts";

Deno.test("a cached seccomp filter is the compiled one; a tampered or untrusted cache is not used", () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-seccomp-cache-" });
  const saved = Deno.env.get("GCR_CACHE");
  Deno.env.set("GCR_CACHE", dir);
  try {
    const caps = resolveCapabilities([], []);
    const compiled = compileProfile(defaultProfile(caps));
    assertEquals([...seccompProgram(undefined, caps)!], [...compiled], "first run: compiled");
    const [entry] = [...Deno.readDirSync(`${dir}/seccomp`)];
    assert(entry, "a cache file was written");
    const path = `${dir}/seccomp/${entry.name}`;
    assertEquals((Deno.statSync(path).mode ?? 0) & 0o777, 0o600, "cache file mode");
    assertEquals([...seccompProgram(undefined, caps)!], [...compiled], "second run: from the cache, the same");

    // A cache entry whose program was changed but whose profile still matches
    // is trusted only because no one else can write the folder: make it
    // writable by others, and gcr must compile again instead of using it.
    const file = Deno.readFileSync(path);
    file[file.length - 1] = file.at(-1)! ^ 0xff;
    Deno.writeFileSync(path, file);
    Deno.chmodSync(`${dir}/seccomp`, 0o777);
    assertEquals([...seccompProgram(undefined, caps)!], [...compiled], "untrusted folder: compiled again");

    // Another profile (one more capability changes the rules) never reads this entry.
    Deno.chmodSync(`${dir}/seccomp`, 0o700);
    const more = resolveCapabilities(["SYS_ADMIN"], []);
    assertEquals([...seccompProgram(undefined, more)!], [...compileProfile(defaultProfile(more))], "other profile");
  } finally {
    if (saved === undefined) Deno.env.delete("GCR_CACHE");
    else Deno.env.set("GCR_CACHE", saved);
    Deno.removeSync(dir, { recursive: true });
  }
});
