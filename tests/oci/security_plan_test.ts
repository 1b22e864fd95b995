/**
 * config.json's process as a security plan: the five capability sets as
 * given, gcr's own bounding set in Docker's shape when none are given, and
 * what the kernel would refuse midway refused by field. Real containers
 * showing the sets are in runtime_test.ts.
 */
import { CAPABILITIES } from "../../ffi/capabilities.ts";
import { securityPlan } from "../../oci/security_plan.ts";
import { parseSpec } from "../../oci/spec/spec.ts";
import { OCI_VERSION } from "../../output/version.ts";
import type { CapabilitySets } from "../../steps/plan.ts";
import { assertEquals, assertThrows } from "../helpers.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const plan = (process: Json) =>
  securityPlan(
    parseSpec({
      ociVersion: OCI_VERSION,
      root: { path: "/" },
      process: { args: ["true"], cwd: "/", user: { uid: 0, gid: 0 }, ...process },
    }, "/"),
  );
const listed = (sets: CapabilitySets) =>
  Object.fromEntries(Object.entries(sets).map(([name, set]) => [name, [...set].sort((a, b) => a - b)]));

Deno.test("security plan: config.json's five capability sets as given, for any uid", () => {
  const { CHOWN, KILL, NET_RAW } = CAPABILITIES;
  for (const uid of [0, 1000]) {
    const caps = {
      bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
      effective: ["CAP_CHOWN"],
      permitted: ["CAP_CHOWN", "CAP_KILL"],
      inheritable: ["CAP_CHOWN", "CAP_NET_RAW"],
      ambient: ["CAP_CHOWN"],
    };
    const security = plan({ user: { uid, gid: uid }, capabilities: caps });
    assertEquals(listed(security.capabilities), {
      bounding: [CHOWN, KILL, NET_RAW],
      effective: [CHOWN],
      permitted: [CHOWN, KILL],
      inheritable: [CHOWN, NET_RAW],
      ambient: [CHOWN],
    }, `uid ${uid}`);
  }
});

Deno.test("security plan: no capabilities in config.json: gcr's own bounding set, Docker's shape", () => {
  const hex = Deno.readTextFileSync("/proc/self/status").match(/^CapBnd:\s*([0-9a-f]+)$/m)![1]!;
  const own = Object.values(CAPABILITIES).filter((cap) => (BigInt(`0x${hex}`) >> BigInt(cap)) & 1n);
  assertEquals(listed(plan({ user: { uid: 1000, gid: 1000 } }).capabilities), {
    bounding: own,
    effective: own,
    permitted: own,
    inheritable: [],
    ambient: [],
  });
});

Deno.test("security plan: for uid 0 an ambient capability that cannot be raised is left out, as runc does", () => {
  // Debian's `runc spec`: ambient capabilities, no inheritable set.
  const names = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
  const { AUDIT_WRITE, KILL, NET_BIND_SERVICE } = CAPABILITIES;
  const all = [KILL, NET_BIND_SERVICE, AUDIT_WRITE].sort((a, b) => a - b);
  const runcSpec = plan({ capabilities: { bounding: names, effective: names, permitted: names, ambient: names } });
  assertEquals(listed(runcSpec.capabilities), {
    bounding: all,
    effective: all,
    permitted: all,
    inheritable: [],
    ambient: [],
  });
  const some = plan({
    capabilities: { bounding: names, effective: names, permitted: names, inheritable: ["CAP_KILL"], ambient: names },
  });
  assertEquals(listed(some.capabilities).ambient, [KILL], "only the inheritable one");
  assertThrows(
    () =>
      plan({
        user: { uid: 1, gid: 1 },
        capabilities: { bounding: names, effective: names, permitted: names, ambient: names },
      }),
    /^config\.json: process\.capabilities\.ambient holds CAP_AUDIT_WRITE, which process\.capabilities\.inheritable lacks: .*uid 1 would exec without it$/,
    "uid 1: refused",
  );
});

Deno.test("security plan: sets the kernel would refuse are refused by field, in one line", () => {
  const caps = (change: Json) => ({
    bounding: ["CAP_CHOWN", "CAP_KILL"],
    effective: ["CAP_CHOWN"],
    permitted: ["CAP_CHOWN", "CAP_KILL"],
    inheritable: ["CAP_CHOWN"],
    ambient: [],
    ...change,
  });
  const refused = (change: Json, message: RegExp) =>
    assertThrows(() => plan({ user: { uid: 1000, gid: 1000 }, capabilities: caps(change) }), message);
  refused(
    { ambient: ["CAP_KILL"] },
    /^config\.json: process\.capabilities\.ambient holds CAP_KILL, which process\.capabilities\.inheritable lacks: [^\n]*PR_CAP_AMBIENT_RAISE[^\n]*$/,
  );
  refused(
    { ambient: ["CAP_NET_RAW"] },
    /^config\.json: process\.capabilities\.ambient holds CAP_NET_RAW, which process\.capabilities\.permitted and process\.capabilities\.inheritable lack: /,
  );
  refused(
    { effective: ["CAP_NET_RAW"] },
    /^config\.json: process\.capabilities\.effective holds CAP_NET_RAW, which process\.capabilities\.permitted lacks: /,
  );
  refused(
    { inheritable: ["CAP_SYS_ADMIN"] },
    /^config\.json: process\.capabilities\.inheritable holds CAP_SYS_ADMIN, which process\.capabilities\.bounding lacks: /,
  );
});
