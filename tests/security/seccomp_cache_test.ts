// The compiled-filter cache: used only for exactly the same profile, and
// only from a folder no other user can write.
import { resolveCapabilities } from "../../security/capabilities.ts";
import { compileProfile } from "../../security/seccomp/compile.ts";
import { cacheKey } from "../../security/seccomp/cache.ts";
import { loadProfile, seccompProgram } from "../../security/seccomp/docker.ts";
import { defaultProfile } from "../../security/seccomp/profile.ts";
import { assert, assertEquals } from "../helpers.ts";

Deno.test("a compiled seccomp filter is read back from the cache for the same profile, never from an untrusted folder", () => {
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
    assertEquals([...seccompProgram(undefined, caps)!], [...compiled], "second run: the same program");

    // The second run read the file rather than compiling: a program changed
    // in the file (its profile still matching) is what the next run gets.
    const file = Deno.readFileSync(path);
    file[file.length - 1] = file.at(-1)! ^ 0xff;
    Deno.writeFileSync(path, file);
    const marked = [...compiled];
    marked[marked.length - 1] = marked.at(-1)! ^ 0xff;
    assertEquals([...seccompProgram(undefined, caps)!], marked, "from the cache: the program in the file");

    // That entry is trusted only because no one else can write the folder:
    // make it writable by others, and gcr must compile again instead.
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

Deno.test('cache files written before stay valid: the key is the profile\'s JSON with each BigInt as "<n>n"', () => {
  const caps = resolveCapabilities([], []);
  // The key as gcr wrote it into every cache file until now: JSON.stringify with a replacer.
  const former = (profile: unknown) =>
    JSON.stringify({ arch: Deno.build.arch, profile }, (_, v) => typeof v === "bigint" ? `${v}n` : v);
  const withComparisons = loadProfile(
    {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        { names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }] },
        {
          names: ["clone"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 2114060288, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
        },
        { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
      ],
    },
    caps,
  );
  for (const profile of [defaultProfile(caps), withComparisons]) {
    assert(profile.rules.some((rule) => rule.args.length > 0), "the profile has argument comparisons");
    assertEquals(cacheKey(profile), former(profile), "the key is what earlier gcr wrote");
  }
  assert(cacheKey(withComparisons).includes('"value":"2114060288n"'), "a BigInt as its digits and n");
});
