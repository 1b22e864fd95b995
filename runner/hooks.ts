/**
 * Runs config.json's hooks (config.md, "POSIX-platform Hooks"): each one a
 * process of gcr's chain (steps/hook_process.ts), with the container's
 * state as JSON on its stdin, its output kept for the error, and its
 * timeout enforced by gcr. A hook fails when it exits with any status but 0,
 * is killed, or outlives its timeout.
 *
 * Where: prestart, createRuntime, poststart and poststop run in gcr's own
 * namespaces (the spec's runtime namespace), in the bundle folder as runc
 * runs them; createContainer and startContainer in the container's,
 * joined as `gcr exec` joins a process.
 *
 * @module
 */
import { MFD_CLOEXEC } from "../ffi/constants.ts";
import { lastErrno, SyscallError } from "../ffi/errno.ts";
import { cString, moveFdAbove } from "../ffi/fds.ts";
import { CHAIN_FDS } from "../ffi/chain.ts";
import { libc } from "../ffi/libc.ts";
import { signalChild } from "../ffi/child.ts";
import { SIGNALS } from "../ffi/constants.ts";

import { OCI_VERSION } from "../output/version.ts";
import {
  type Hook,
  HOOK_FDS,
  type HookKind,
  type HookPlace,
  type HookState,
  runtimeHookSteps,
} from "../steps/hook_process.ts";
import { execSteps } from "../steps/pipeline.ts";
import { runSteps } from "./runner.ts";
import { trace, tracingToFile } from "../output/trace.ts";

/** A hook that failed: `error running <kind> hook #<i> <path>: <why>`, as runc words it (one line). */
export class HookError extends Error {
  override name = "HookError";
}

/**
 * An anonymous file: the state for stdin, or the hook's output (read back
 * through /proc/self/fd). Above the numbers the chain's prologue copies to.
 */
function memfd(name: string): number {
  const fd = libc().memfd_create(cString(name), MFD_CLOEXEC);
  if (fd === -1) throw new SyscallError(`memfd_create("${name}")`, lastErrno());
  return moveFdAbove(fd, CHAIN_FDS.firstFree + 16);
}

const OUTPUT_SHOWN = 2000;

/** Runs one hook to its end; throws a HookError when it fails. */
export async function runHook(
  kind: HookKind,
  index: number,
  hook: Hook,
  state: HookState,
  place: HookPlace,
): Promise<void> {
  const what = `error running ${kind} hook #${index} ${hook.path}`;
  const stdin = memfd("gcr-hook-state");
  const output = memfd("gcr-hook-output");
  let pid = 0;
  let timedOut = false;
  const timer = hook.timeout === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    if (pid) signalChild(pid, SIGNALS.SIGKILL);
  }, hook.timeout * 1000);
  try {
    // Written through a new open file description: the hook's stdin still reads from offset 0.
    const json = { ociVersion: OCI_VERSION, ...state };
    Deno.writeTextFileSync(`/proc/self/fd/${stdin}`, JSON.stringify(json));
    const steps = place.in === "runtime"
      ? runtimeHookSteps({ path: hook.path, args: hook.args, env: hook.env ?? environ(), cwd: place.cwd })
      : execSteps({
        ...place.join,
        argv: hook.args,
        file: hook.path,
        env: hook.env ?? place.join.env,
        workdir: "/",
        dieWithParent: true,
        hookStdio: true,
      });
    trace(`  ${kind} hook #${index}: ${[hook.path, ...(hook.args ?? []).slice(1)].join(" ")} (${where(place)})`);
    const status = await runSteps(steps, tracingToFile() ? "trace" : "run", {
      layout: CHAIN_FDS,
      inherit: [{ from: stdin, to: HOOK_FDS.stdin }, { from: output, to: HOOK_FDS.output }],
      onExec: (child) => {
        pid = child;
        if (timedOut) signalChild(pid, SIGNALS.SIGKILL);
      },
    });
    if (timedOut) throw new HookError(`${what}: timed out after ${hook.timeout} s${said(output)}`);
    if ("signaled" in status) throw new HookError(`${what}: killed by signal ${status.signaled}${said(output)}`);
    if (status.exited !== 0) throw new HookError(`${what}: exit status ${status.exited}${said(output)}`);
    trace(`  ${kind} hook #${index}: exit status 0`);
  } catch (error) {
    if (error instanceof HookError) throw error;
    throw new HookError(`${what}: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
    libc().close(stdin);
    libc().close(output);
  }
}

/** Where a hook runs, as its trace line says. */
function where(place: HookPlace): string {
  return place.in === "runtime"
    ? `in the runtime's namespaces, in ${place.cwd}`
    : `in the container's namespaces, through pid ${place.join.pid}`;
}

/** The start of what the hook printed, on one line, for its error. */
function said(output: number): string {
  let text = "";
  try {
    text = new TextDecoder().decode(Deno.readFileSync(`/proc/self/fd/${output}`).subarray(0, OUTPUT_SHOWN));
  } catch { /* nothing to add */ }
  const line = text.trim().replace(/\s*\n\s*/g, " | ");
  return line ? `: ${line}` : "";
}

/** gcr's own environment, which a runtime-namespace hook without `env` inherits (Go's exec, in runc). */
function environ(): string[] {
  return Object.entries(Deno.env.toObject()).map(([name, value]) => `${name}=${value}`);
}

/**
 * Runs the hooks of one kind in order; the first failure ends the run
 * (create-time and startContainer hooks: the caller stops the container).
 */
export async function runHooks(
  kind: HookKind,
  hooks: readonly Hook[],
  state: HookState,
  place: HookPlace,
): Promise<void> {
  for (const [index, hook] of hooks.entries()) await runHook(kind, index, hook, state, place);
}
