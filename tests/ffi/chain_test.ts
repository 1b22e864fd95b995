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
    for (const { call, gate } of calls) {
      expected.push(...(gate ? ["read"] : []), call.fn, "write", "memcpy", "read");
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
