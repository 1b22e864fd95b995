/**
 * The one runner: executes a list of steps against a cloned child, in one of
 * three modes. `run` logs the Go original's lines; `trace` also prints every
 * libc call and what changed in /proc/<pid> after each step; `step` pauses
 * before each step until Enter. The child is stopped at the first failure.
 *
 * @module
 */
import { buildChain, CHAIN_FDS, type ChainCall, type ChainLayout, type ChildCall } from "../ffi/chain.ts";
import {
  cloneChild,
  closeFds,
  type ExitStatus,
  killChild,
  nonDumpableUntilRestored,
  openChainPipes,
  openGate,
  pidNamespaceForChildren,
  signalChild,
  statusReader,
  waitChild,
} from "../ffi/child.ts";
import { ERRNO, SIGNALS } from "../ffi/constants.ts";
import { SyscallError } from "../ffi/errno.ts";
import { moveFdAbove } from "../ffi/fds.ts";
import { NativeArena } from "../ffi/memory.ts";
import { sealedTrampoline, TRAMPOLINE_NAME } from "../ffi/exec_trampoline.ts";
import { primeMigration } from "../cgroup/migration.ts";
import { foregroundTerminal, handTerminal } from "../ffi/terminal.ts";
import { log, prompt, runningAs } from "../output/log.ts";
import { trace } from "../output/trace.ts";
import { warn } from "../output/runtime_log.ts";
import { changes, type Snapshot, snapshot } from "./observe.ts";
import { cloneFailureHint } from "../steps/clone_namespaces.ts";
import type { IdMapping, ParentOp, Step } from "../steps/step.ts";
import type { Hook, HookKind } from "../steps/hook_process.ts";
import { StepError } from "./step_error.ts";

export type RunMode = "run" | "trace" | "step";

/** Signals gcr passes on to the container's first process. */
const FORWARDED = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"] as const;

/** How a parent op is shown in trace, step mode and explain. */
export function showParentOp(op: ParentOp): string {
  switch (op.op) {
    case "clone": {
      const own = [...(op.sharesMemory ? ["CLONE_VM"] : []), "CLONE_SETTLS"];
      const clone = `clone(setcontext, stack, ${[...own, op.show].join("|")}, chain, NULL, <its own thread area>)`;
      const trampoline = `memfd_create("${TRAMPOLINE_NAME}"), its code written, sealed (F_SEAL_WRITE|…): ` +
        "the child's exec trampoline";
      const born = !op.nonDumpable
        ? clone
        : op.sharesMemory
        ? `prctl(PR_SET_DUMPABLE, 0) on gcr from the clone until the child's exec: the child is born non-dumpable ` +
          `and runs in gcr's memory until then; ${clone}`
        : `prctl(PR_SET_DUMPABLE, 0) on gcr just around the clone: the child is born non-dumpable; ${clone}`;
      return [
        trampoline,
        op.pidNamespace
          ? `setns(${op.pidNamespace}, CLONE_NEWPID) for children; ${born}; setns back to gcr's own`
          : born,
      ].join("\n");
    }
    case "write-proc-file":
      return `write /proc/<pid>/${op.file}: ${JSON.stringify(op.content.trim())}` +
        (op.refused ? " (should the kernel refuse: a warning in --log)" : "");
    case "run-helper":
      return op.argv.map((a) => (a === "{pid}" ? "<pid>" : a)).join(" ");
    case "log-identity":
      return "log pid, uid and gid of the child as /proc/<pid>/status shows them";
    case "hand-terminal":
      return "tcsetpgrp(<tty>, <pid>) when gcr owns the terminal's foreground";
    case "join-cgroup":
      return [
        ...op.setup.map((line) => `(before clone) ${line}`),
        "(while the chain is built) write gcr's own cgroup.procs: <gcr pid>, a move to where it is: the kernel's " +
        "first migration of a burst waits for an RCU grace period, the next ones do not",
        ...op.procs.map((file) => `write ${file}: <pid>`),
      ].join("\n");
    case "connect-bridge":
      return op.show.join("\n");
    case "adopt-child":
      return "find the forked process in /proc/<gcr>/task/<gcr>/children; reap the one that forked it";
    case "run-hooks":
      return op.hooks.map((hook, index) => showHook(op.kind, index, hook, op.place)).join("\n");
  }
}

/** One hook as explain and trace show it: where it runs, its argv, its timeout. */
export function showHook(
  kind: HookKind,
  index: number,
  hook: Hook,
  place: { in: "runtime"; cwd: string } | { in: "container"; join: { namespaces: readonly string[] } },
): string {
  const where = place.in === "runtime"
    ? `in gcr's namespaces, from ${place.cwd}`
    : `in the container's namespaces (${place.join.namespaces.join(", ") || "none"}), from /`;
  const argv = hook.args.map((arg) => JSON.stringify(arg)).join(" ");
  const limit = hook.timeout === undefined ? "" : `, at most ${hook.timeout} s`;
  return `${kind}[${index}]: ${hook.path} as {${argv}}, the state JSON on stdin, ${where}${limit}`;
}

/** How a child call is shown in step mode and explain: the call, and what the trampoline then runs. */
export function showChildCall(call: ChildCall): string[] {
  return [`child: ${call.show}`, ...(call.execs ? [`${TRAMPOLINE_NAME}: ${call.execs.then}`] : [])];
}

/** A host id as the container sees it, through the map gcr wrote. */
function inside(map: readonly IdMapping[], outside: number): number {
  const m = map.find((m) => outside >= m.outside && outside < m.outside + m.count);
  return m ? outside - m.outside + m.inside : 65534;
}

/** The child's pid, uid and gid as observed in /proc/<pid>/status. */
function observedIdentity(pid: number, uidMap: readonly IdMapping[], gidMap: readonly IdMapping[]): string {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const first = (name: string) => {
    const values = status.match(new RegExp(`^${name}:\\s*(.*)$`, "m"))?.[1]?.trim().split(/\s+/) ?? [];
    return values.map(Number);
  };
  const nsPid = first("NSpid").at(-1) ?? -1;
  return runningAs(nsPid, inside(uidMap, first("Uid")[0] ?? -1), inside(gidMap, first("Gid")[0] ?? -1));
}

async function waitForEnter(step: Step, index: number, total: number): Promise<void> {
  prompt(`\n[${index + 1}/${total}] ${step.name}: ${step.why}`);
  for (const op of step.parent) showParentOp(op).split("\n").forEach((line) => prompt(`    gcr:   ${line}`));
  for (const call of step.child) showChildCall(call).forEach((line) => prompt(`    ${line}`));
  prompt("    press Enter to run this step (Ctrl-D to abort)");
  let tty: Deno.FsFile | undefined;
  try {
    tty = Deno.openSync("/dev/tty", { read: true });
  } catch { /* no terminal: read stdin */ }
  const input = tty ?? Deno.stdin;
  const buffer = new Uint8Array(256);
  try {
    const n = await input.read(buffer);
    if (n === null) throw new Error("aborted at the step prompt");
  } finally {
    tty?.close();
  }
}

function execFailureCode(errno: number): number {
  const { ENOENT, ENOTDIR, EACCES, ENOEXEC, EPERM, EISDIR } = ERRNO;
  // No such command: 127, as a shell says; one that cannot be run: 126.
  return [ENOENT, ENOTDIR].includes(errno) ? 127 : [EACCES, ENOEXEC, EPERM, EISDIR].includes(errno) ? 126 : 125;
}

/**
 * Where the child waits for the parent: before the first call after any
 * parent op (it must not run ahead of the id maps or the terminal hand-over),
 * and, in trace and step modes, before every step, so the parent can look at
 * it or pause between steps. Elsewhere it runs ahead; the chain still stops
 * it at the first failed call.
 *
 * And which calls report: all in trace and step modes, which show each
 * call's result; in a plain run, of a run of calls that only take something
 * away (`takesAway`) within a step, only the last (see ffi/chain.ts).
 */
export function gateCalls(steps: readonly Step[], mode: RunMode): ChainCall[][] {
  let parentActed = false;
  return steps.map((step) => {
    // The clone itself leaves the child nothing to wait for: only what gcr does to it afterwards.
    parentActed ||= step.parent.some((op) => op.op !== "clone");
    const reports = (call: ChildCall, index: number) =>
      mode !== "run" || !call.takesAway || !step.child[index + 1]?.takesAway;
    if (step.runsAhead) return step.child.map((call, index) => ({ call, gate: false, reports: reports(call, index) }));
    return step.child.map((call, index) => {
      const gate = parentActed || (mode !== "run" && index === 0);
      parentActed = false;
      return { call, gate, reports: reports(call, index) };
    });
  });
}

/**
 * Runs the steps, then waits for the container to exit while forwarding
 * signals. Throws StepError when a step fails (the child is killed first).
 */
export interface RunHooks {
  /**
   * Called once, as soon as gcr has let the child go ahead (the first gate
   * it opens) and before it reads the statuses that follow: the child runs
   * its calls meanwhile, so gcr's own work here (writing a record) costs
   * the start nothing. With no gate, just before onExec.
   */
  readonly whileChildRuns?: (pid: number) => void;
  /** Called once the command has replaced the child (exec succeeded), with the child's host pid. */
  readonly onExec?: (pid: number) => void;
  /** Return once the command runs instead of waiting for it (exec -d): its exit is not gcr's to see. */
  readonly detach?: boolean;
  /** Descriptors the child gets at fixed numbers (see ChainPipes.inherit). */
  readonly inherit?: readonly { readonly from: number; readonly to: number }[];
  /** Where the child keeps the chain's pipes (ChainPipes.layout); default CHAIN_FDS. */
  readonly layout?: ChainLayout;
}

/** What runSteps saw: how the command ended, or, detached, that it runs with this host pid. */
export type RunOutcome = ExitStatus | { readonly running: number };

export async function runSteps(
  steps: readonly Step[],
  mode: RunMode,
  hooks?: RunHooks & { readonly detach?: false },
): Promise<ExitStatus>;
export async function runSteps(steps: readonly Step[], mode: RunMode, hooks: RunHooks): Promise<RunOutcome>;
export async function runSteps(steps: readonly Step[], mode: RunMode, hooks: RunHooks = {}): Promise<RunOutcome> {
  const arena = new NativeArena();
  // Started first, so the kernel's wait overlaps building the chain (see primeMigration).
  const joinsCgroup = steps.flatMap((step) => step.parent).find((op) => op.op === "join-cgroup");
  const primed = joinsCgroup?.procs[0] !== undefined && mode !== "step"
    ? primeMigration(joinsCgroup.procs[0])
    : undefined;
  // The parent's ends go above every number the child's prologue writes to.
  const floor = hooks.layout ? hooks.layout.firstFree + (hooks.inherit?.length ?? 0) : undefined;
  const pipes = openChainPipes(floor);
  let trampoline: number;
  try {
    trampoline = moveFdAbove(sealedTrampoline(), floor ?? CHAIN_FDS.firstFree);
  } catch (error) {
    closeFds(pipes.gateRead, pipes.gateWrite, pipes.statusRead, pipes.statusWrite);
    throw error;
  }
  let pid = 0;
  let execd = false;
  // The child got past a call that ends its reports (the OCI start gate): it waits for gcr start.
  let handedOver = false;
  let interrupted: number | undefined;
  let giveTerminalBack: (() => void) | undefined;
  let restoreDumpable: (() => void) | undefined;
  const onSignal = FORWARDED.map((name) => {
    const handler = () => {
      if (execd) signalChild(pid, SIGNALS[name]);
      else interrupted = SIGNALS[name];
    };
    Deno.addSignalListener(name, handler);
    return () => Deno.removeSignalListener(name, handler);
  });

  const doParentOp = async (op: ParentOp, step: Step) => {
    switch (op.op) {
      case "clone": {
        const chain = buildChain(arena, chainCalls.flat(), {
          ...pipes,
          trampoline,
          inherit: hooks.inherit ?? [],
          ...(hooks.layout ? { layout: hooks.layout } : {}),
        });
        if (op.sharesMemory && (!op.nonDumpable || op.pidNamespace)) {
          throw new Error("a child that shares gcr's memory must be born non-dumpable, into namespaces of its own");
        }
        const restorePidNamespace = op.pidNamespace ? pidNamespaceForChildren(op.pidNamespace) : undefined;
        restoreDumpable = op.nonDumpable ? nonDumpableUntilRestored() : undefined;
        try {
          pid = cloneChild(arena, chain, op.flags, op.show, op.sharesMemory);
        } catch (error) {
          const hint = error instanceof SyscallError ? cloneFailureHint(error.errno) : undefined;
          throw hint ? new Error(`${(error as Error).message}: ${hint}`, { cause: error }) : error;
        } finally {
          restorePidNamespace?.();
          // A child in gcr's memory map keeps gcr non-dumpable until it has exec'd or died.
          if (!op.sharesMemory) restoreDumpable?.();
        }
        // The child has its own copies of these now: the parent's are only in
        // the way (the status pipe must reach end-of-file when the child
        // execs). The arena stays until the exec: the child may run in it.
        closeFds(pipes.gateRead, pipes.statusWrite, trampoline);
        return;
      }
      case "write-proc-file":
        try {
          Deno.writeTextFileSync(`/proc/${pid}/${op.file}`, op.content);
        } catch (error) {
          const code = (error as { code?: string }).code ?? (error as Error).message;
          if (op.refused) return warn(op.refused(`write /proc/<pid>/${op.file}: ${code}`));
          throw new Error(`write /proc/${pid}/${op.file} ${JSON.stringify(op.content.trim())}: ${code}`);
        }
        return;
      case "run-helper": {
        const [program, ...args] = op.argv.map((a) => (a === "{pid}" ? String(pid) : a));
        const result = new Deno.Command(program!, { args, stdout: "null", stderr: "piped" }).outputSync();
        if (!result.success) {
          const message = new TextDecoder().decode(result.stderr).trim().split("\n")[0];
          throw new Error(`${program} ${args.join(" ")}: ${message || `exit ${result.code}`}`);
        }
        return;
      }
      case "join-cgroup":
        await primed;
        for (const file of op.procs) {
          try {
            Deno.writeTextFileSync(file, String(pid), { create: false });
          } catch (error) {
            const code = (error as { code?: string }).code ?? (error as Error).message;
            throw new Error(`write ${file} "${pid}": ${code}`);
          }
        }
        return;
      case "log-identity":
        log(() => observedIdentity(pid, op.uidMap, op.gidMap));
        return;
      case "adopt-child": {
        const children = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${Deno.pid}/children`).trim().split(/\s+/)
          .filter(Boolean).map(Number).filter((child) => child !== pid);
        if (children.length !== 1) {
          throw new Error(
            `expected one forked process beside ${pid}, found ${children.length ? children.join(" ") : "none"}`,
          );
        }
        killChild(pid); // it has exited already (its chain ends at the fork): this reaps it
        pid = children[0]!;
        return;
      }
      case "connect-bridge": {
        // Loaded only for --net bridge: the rest of gcr's start-up does not pay for it.
        const { connect } = await import("../net/bridge.ts");
        await connect(op.attachment, pid);
        return;
      }
      case "hand-terminal": {
        const fd = foregroundTerminal();
        if (fd !== undefined) giveTerminalBack = handTerminal(fd, pid);
        return;
      }
      case "run-hooks": {
        // Loaded only for configs with hooks.
        const { runHooks } = await import("./hooks.ts");
        const place = op.place.in === "runtime" ? op.place : { in: op.place.in, join: { ...op.place.join, pid } };
        await runHooks(op.kind, op.hooks, { ...op.state, pid }, place);
        return;
      }
      default: {
        const never: never = op;
        throw new Error(`step ${step.name}: unknown parent op ${JSON.stringify(never)}`);
      }
    }
  };

  const chainCalls = gateCalls(steps, mode);
  const nextStatus = statusReader(pipes.statusRead);
  let childRuns = false;
  const letChildRun = () => {
    if (childRuns) return;
    childRuns = true;
    hooks.whileChildRuns?.(pid);
  };
  // `at`: its place among `calls`, its step's; those just before it may report with it (ChainCall.reports).
  const runCall = (calls: readonly ChainCall[], at: number, step: Step) => {
    const { call, gate, reports } = calls[at]!;
    // In trace mode gcr's own work goes before the gate opens: the time shown for a call stays the child's.
    if (gate && mode === "trace") letChildRun();
    const started = mode === "trace" ? performance.now() : 0;
    if (gate) {
      openGate(pipes.gateWrite);
      letChildRun();
    }
    if (reports === false) return;
    const errno = nextStatus();
    const took = mode === "trace" ? (performance.now() - started).toFixed(2) : "";
    if (errno === null) {
      if (call.endsReports) {
        handedOver = true;
        if (mode === "trace") trace(`    ${call.show} → reports end here; the child waits for gcr start  ${took} ms`);
        return;
      }
      if (call.execs) {
        execd = true;
        // Its own memory map now: nothing of gcr's left to guard, and the chain is no one's.
        restoreDumpable?.();
        arena.free();
        // A signal that came while the child ran on to its exec (recorded,
        // not yet acted on) is the command's now, as later ones are.
        if (interrupted !== undefined) signalChild(pid, interrupted);
        if (mode === "trace") trace(`    ${call.show} → ${TRAMPOLINE_NAME}: ${call.execs.then} → exec'd  ${took} ms`);
        letChildRun();
        hooks.onExec?.(pid);
        return;
      }
      throw new StepError(step.name, new Error(`${call.show}: the container's process died`));
    }
    if (errno < 0 && call.execs) {
      // The trampoline's exec of the command failed (it reports -errno).
      const code = execFailureCode(-errno);
      const hint = code === 127
        ? "executable file not found in the container's PATH"
        : code === 126
        ? "command cannot be executed"
        : undefined;
      throw new StepError(step.name, new SyscallError(call.execs.then, -errno, hint), code);
    }
    if (errno !== 0) {
      const hint = call.execs
        ? `${TRAMPOLINE_NAME} could not be run: a seccomp profile must allow execveat`
        : undefined;
      // Which of the run failed, the status does not say (--trace reports each call).
      let first = at;
      while (first > 0 && calls[first - 1]!.reports === false) first--;
      const shown = first < at
        ? `${calls[first]!.call.show} … ${call.show} (${at - first + 1} calls reported together; --trace names the one)`
        : call.show;
      throw new StepError(step.name, new SyscallError(shown, errno, hint), 125);
    }
    if (mode === "trace") trace(`    ${call.show} = 0  ${took} ms`);
  };

  try {
    let before: Snapshot | undefined;
    for (const [index, step] of steps.entries()) {
      if (mode === "step" && !step.runsAhead) await waitForEnter(step, index, steps.length);
      if (mode === "step" && step.runsAhead) {
        prompt(`\n[${index + 1}/${steps.length}] ${step.name}: ${step.why} (runs at once)`);
      }
      if (interrupted) {
        throw new StepError(step.name, new Error(`interrupted by signal ${interrupted}`), 128 + interrupted);
      }
      if (mode === "trace") {
        trace(`[${index + 1}/${steps.length}] ${step.name}: ${step.why}`);
        before ??= snapshot("self");
      }
      try {
        for (const op of step.parent) {
          if (mode === "trace" && op.op !== "log-identity") {
            showParentOp(op).split("\n").forEach((line) => trace(`    gcr: ${line}`));
          }
          await doParentOp(op, step);
          if (op.op === "clone" && mode === "trace") trace(`    → child pid ${pid} (host)`);
        }
      } catch (error) {
        if (error instanceof StepError) throw error;
        throw new StepError(step.name, error as Error);
      }
      for (const at of chainCalls[index]!.keys()) {
        runCall(chainCalls[index]!, at, step);
        if (handedOver) {
          // What the child does once gcr start has written its byte: no gcr reads its statuses any more.
          if (mode === "trace") {
            for (const { call: later } of chainCalls[index]!.slice(at + 1)) {
              trace(
                `    (after gcr start) ${later.show}${later.execs ? ` → ${TRAMPOLINE_NAME}: ${later.execs.then}` : ""}`,
              );
            }
          }
          return { running: pid };
        }
      }
      if (mode === "trace" && !execd) {
        const after = snapshot(pid);
        for (const line of changes(before ?? after, after)) trace(`    changed: ${line}`);
        before = after;
      }
    }
    if (hooks.detach) return { running: pid };
    return await waitChild(arena, pid);
  } catch (error) {
    if (pid > 0 && !execd && !handedOver) killChild(pid);
    throw error;
  } finally {
    // After the kill above: a child that shares gcr's memory is reaped by then.
    restoreDumpable?.();
    giveTerminalBack?.();
    onSignal.forEach((remove) => remove());
    closeFds(pipes.gateWrite, pipes.statusRead);
    if (pid === 0) closeFds(pipes.gateRead, pipes.statusWrite, trampoline);
    arena.free();
  }
}
