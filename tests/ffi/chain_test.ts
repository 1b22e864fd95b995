// The chain builder on its own: no child is cloned here.
import { buildChain } from "../../ffi/chain.ts";
import { LAYOUT } from "../../ffi/constants.ts";
import { childFunctions } from "../../ffi/libc.ts";
import { NativeArena } from "../../ffi/memory.ts";
import { gateCalls } from "../../runner/runner.ts";
import { containerSteps } from "../../steps/pipeline.ts";
import { testPlan } from "../plans.ts";
import { assert, assertEquals } from "../helpers.ts";

// As root: map-ids then has a child call (setgroups) and so a gate.
const plan = testPlan({}, true);

Deno.test("the chain: every context linked to the next, each calling its function, the last _exit", () => {
  const arena = new NativeArena();
  try {
    const calls = gateCalls(containerSteps(plan), "run").flat();
    const chain = buildChain(arena, calls, { gateRead: 10, statusWrite: 11, trampoline: 12 });
    const { ucontext } = LAYOUT;
    const view = (at: bigint) => new Deno.UnsafePointerView(Deno.UnsafePointer.create(at)!);
    const functions = childFunctions(["memcpy", "dup3", "read", "write", "_exit", ...calls.map((c) => c.call.fn)]);
    const nameOf = new Map([...functions].map(([name, pointer]) => [Deno.UnsafePointer.value(pointer), name]));
    const called: string[] = [];
    for (let at = Deno.UnsafePointer.value(chain.start); at !== 0n;) {
      called.push(nameOf.get(view(at).getBigUint64(ucontext.gregs_rip)) ?? "?");
      at = view(at).getBigUint64(ucontext.uc_link);
    }
    // The prologue zeroes errno and moves the pipes and the trampoline; then,
    // for each call, its gate (if any), the call and the status it reports.
    const expected = ["memcpy", "dup3", "dup3", "dup3"];
    for (const { call, gate, reports } of calls) {
      expected.push(...(gate ? ["read"] : []), call.fn, ...(reports === false ? [] : ["write", "memcpy", "read"]));
    }
    assertEquals(called, [...expected, "_exit"], "the contexts in the order the child runs them");
    assertEquals(
      Deno.UnsafePointer.value(chain.setcontext),
      Deno.UnsafePointer.value(functions.get("setcontext") ?? childFunctions(["setcontext"]).get("setcontext")!),
      "clone starts the child in setcontext",
    );
  } finally {
    arena.free();
  }
});

Deno.test("gates: run mode waits only where gcr acts first (the terminal only if it has one); trace mode before every step", () => {
  const steps = containerSteps(plan);
  const run = gateCalls(steps, "run");
  const gated = steps.flatMap((step, i) => run[i]!.filter((c) => c.gate).map(() => step.name));
  // map-ids' calls wait for its parent ops (the id maps); exec waits for the terminal hand-over.
  assertEquals(gated, ["map-ids", "exec"], "run-mode gates before");
  // Without a terminal to hand over, nothing makes the child wait before its exec.
  const alone = containerSteps({ ...plan, foreground: false });
  const aloneRun = gateCalls(alone, "run");
  assertEquals(
    alone.flatMap((step, i) => aloneRun[i]!.filter((c) => c.gate).map(() => step.name)),
    ["map-ids"],
    "run-mode gates before, no terminal",
  );
  const trace = gateCalls(steps, "trace");
  steps.forEach((step, i) => {
    // die-with-parent runs ahead of every gate, in every mode: a child must never wait before it is tied to gcr.
    if (step.runsAhead) assert(!trace[i]!.some((c) => c.gate), `trace mode: ${step.name} must not wait`);
    else if (step.child.length > 0) assert(trace[i]![0]!.gate, `trace mode: no gate before ${step.name}`);
  });
});

Deno.test("reports: in a plain run the bounding set's drops report once, with the last of their run; trace reports each", () => {
  const steps = containerSteps(plan);
  const drop = steps.findIndex((step) => step.name === "drop-capabilities");
  const runCalls = gateCalls(steps, "run")[drop]!;
  const silent = runCalls.filter((c) => c.reports === false).map((c) => c.call.show);
  const drops = steps[drop]!.child.filter((call) => call.show.startsWith("prctl(PR_CAPBSET_DROP"));
  assert(drops.length > 20, `a default container drops most capabilities (${drops.length})`);
  assertEquals(silent, drops.map((call) => call.show), "run mode: every drop goes unreported");
  // The run's last call reports for all of it: the ambient set's clear, which only takes away too.
  const reporter = runCalls[drops.length]!;
  assertEquals(reporter.call.show, "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)", "the run's last call");
  assert(reporter.reports !== false, "reports");
  // What the drops' failure cannot reach: every call after the run reports, and so does each call outside such runs.
  const others = gateCalls(steps, "run").flat().filter((c) => !c.call.takesAway);
  assert(others.every((c) => c.reports !== false), "calls that do not only take away always report");
  assert(gateCalls(steps, "trace").flat().every((c) => c.reports !== false), "trace mode: every call reports");
});
