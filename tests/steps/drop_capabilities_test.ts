/**
 * The capability steps as data, the way explain and --trace show them: which
 * calls, in which order, around set-user, and how each set is named. What
 * the kernel then makes of them is shown from inside real containers in
 * tests/oci/runtime_test.ts (config.json's five sets) and
 * tests/security/hardening_test.ts (gcr run's one set).
 */
import { CAPABILITIES } from "../../ffi/capabilities.ts";
import { LAYOUT } from "../../ffi/constants.ts";
import { resolveCapabilities } from "../../security/capabilities.ts";
import { recordedCapabilities } from "../../state/records.ts";
import { hardening } from "../../steps/pipeline.ts";
import { type CapabilitySets, type SecurityPlan, singleSet } from "../../steps/plan.ts";
import type { Step } from "../../steps/step.ts";
import { testPlan } from "../plans.ts";
import { assert, assertEquals } from "../helpers.ts";

const { CHOWN, KILL, NET_RAW, SETUID, BPF } = CAPABILITIES;
const ids = testPlan({}, true).ids;
const LAST = Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim());
const sets = (bounding: number[], effective: number[], inheritable: number[], ambient: number[]): CapabilitySets => ({
  bounding: new Set(bounding),
  effective: new Set(effective),
  permitted: new Set(effective),
  inheritable: new Set(inheritable),
  ambient: new Set(ambient),
});
const plan = (capabilities: CapabilitySets, user?: { uid: number; gid: number }): SecurityPlan => ({
  capabilities,
  noNewPrivs: true,
  maskPaths: false,
  ...(user ? { user: { ...user, groups: [], home: "/" } } : {}),
});
/** Each step's calls as shown, the bounding drops counted rather than listed. */
const shown = (steps: Step[]) =>
  steps.map((step) => {
    const calls = step.child.map((c) => c.show);
    const drops = calls.filter((c) => c.startsWith("prctl(PR_CAPBSET_DROP"));
    return [step.name, ...(drops.length ? [`${drops.length} drops`] : []), ...calls.filter((c) => !drops.includes(c))];
  });

Deno.test("capability steps: gcr run's default is one step, bounding drops, ambient cleared, one capset", () => {
  const keep = resolveCapabilities([], []);
  const steps = hardening(plan(singleSet(keep)), ids).filter((s) => s.name !== "no-new-privs");
  assertEquals(shown(steps), [[
    "drop-capabilities",
    `${LAST + 1 - keep.size} drops`,
    "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)",
    "capset({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=permitted=CAP_CHOWN|CAP_DAC_OVERRIDE|" +
    "CAP_FOWNER|CAP_FSETID|CAP_KILL|CAP_SETGID|CAP_SETUID|CAP_SETPCAP|CAP_NET_BIND_SERVICE|CAP_NET_RAW|" +
    "CAP_SYS_CHROOT|CAP_MKNOD|CAP_AUDIT_WRITE|CAP_SETFCAP, inheritable=0}) [raw syscall 126]",
  ]]);
  assert(steps[0]!.why.includes("the bounding set becomes CAP_CHOWN|"), "the why names the bounding set");
});

Deno.test("capability steps: a switch to uid 1000 goes between the bounding set and the rest, under keep-caps", () => {
  const steps = hardening(
    plan(sets([CHOWN, KILL, NET_RAW, SETUID], [CHOWN, KILL], [CHOWN, KILL], [KILL, CHOWN]), {
      uid: 1000,
      gid: 1000,
    }),
    ids,
  );
  assertEquals(shown(steps), [
    ["drop-capabilities", `${LAST + 1 - 4} drops`, "prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)"],
    [
      "set-user",
      "setgroups(0, NULL) [raw syscall 116]",
      "setresgid(1000, 1000, 1000) [raw syscall 119]",
      "setresuid(1000, 1000, 1000) [raw syscall 117]",
    ],
    [
      "set-capabilities",
      "prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)",
      "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)",
      "capset({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=permitted=inheritable=CAP_CHOWN|CAP_KILL}) " +
      "[raw syscall 126]",
      "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0)",
      "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0)",
    ],
    ["no-new-privs", "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)"],
  ]);
});

Deno.test("capability steps: uid 0 with another gid sets the sets after set-user too, without keep-caps", () => {
  const steps = hardening(plan(sets([CHOWN, KILL], [CHOWN], [KILL], []), { uid: 0, gid: 5 }), ids);
  assertEquals(steps.map((s) => s.name), ["drop-capabilities", "set-user", "set-capabilities", "no-new-privs"]);
  assert(!steps.some((s) => s.child.some((c) => c.show.includes("KEEPCAPS"))), "no keep-caps: uid 0 keeps its sets");
  assertEquals(
    steps[2]!.child.map((c) => c.show).at(-1),
    "capset({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=permitted=CAP_CHOWN, inheritable=CAP_KILL}) " +
      "[raw syscall 126]",
  );
});

Deno.test("capset's data: effective, permitted and inheritable bits in both halves (caps 0-31, 32-63)", () => {
  const step = hardening(plan(sets([CHOWN, BPF], [CHOWN, BPF], [BPF], [BPF])), ids)[0]!;
  const capset = step.child.find((c) => c.show.startsWith("capset"))!;
  const data = capset.args.at(-1) as { bytes: Uint8Array };
  const view = new DataView(data.bytes.buffer);
  const word = (half: number, field: "effective" | "permitted" | "inheritable") =>
    view.getUint32(half * LAYOUT.cap_data.size + LAYOUT.cap_data[field], true);
  assertEquals([word(0, "effective"), word(0, "permitted"), word(0, "inheritable")], [1 << CHOWN, 1 << CHOWN, 0]);
  const bpf = 1 << (BPF - 32);
  assertEquals([word(1, "effective"), word(1, "permitted"), word(1, "inheritable")], [bpf, bpf, bpf]);
  assertEquals(
    step.child.at(-1)!.show,
    "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_BPF, 0, 0)",
    "the ambient raise comes after capset",
  );
});

Deno.test("a record's capabilities: five sets as written; an old record's one list is bounding, effective, permitted", () => {
  const five = recordedCapabilities({
    capabilities: { bounding: [CHOWN, KILL], effective: [CHOWN], permitted: [CHOWN], inheritable: [KILL], ambient: [] },
  });
  assertEquals(
    Object.fromEntries(Object.entries(five).map(([name, set]) => [name, [...set]])),
    { bounding: [CHOWN, KILL], effective: [CHOWN], permitted: [CHOWN], inheritable: [KILL], ambient: [] },
  );
  const old = recordedCapabilities({ capabilities: [CHOWN, KILL] });
  assertEquals(
    Object.fromEntries(Object.entries(old).map(([name, set]) => [name, [...set]])),
    { bounding: [CHOWN, KILL], effective: [CHOWN, KILL], permitted: [CHOWN, KILL], inheritable: [], ambient: [] },
  );
});
