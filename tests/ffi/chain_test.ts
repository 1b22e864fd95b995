// The chain builder on its own: no child is cloned here.
import { buildChain } from "../../ffi/chain.ts";
import { NativeArena } from "../../ffi/memory.ts";
import { gateCalls } from "../../runner/runner.ts";
import { containerSteps } from "../../steps/pipeline.ts";
import { testPlan } from "../plans.ts";
import { assert, assertEquals } from "../helpers.ts";

// As root: map-ids then has a child call (setgroups) and so a gate.
const plan = testPlan({}, true);

Deno.test("this glibc's makecontext matches the JavaScript one, so the chain is built without ~180 FFI calls", () => {
  const arena = new NativeArena();
  try {
    const chain = buildChain(arena, gateCalls(containerSteps(plan), "run").flat(), {
      gateRead: 10,
      statusWrite: 11,
      trampoline: 12,
    });
    assert(
      chain.emulatedMakecontext,
      "makecontext's output differs from the model in learnMakecontext: every context used makecontext",
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
