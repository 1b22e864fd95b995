/**
 * What a step is: plain data. A step names itself, says why it exists, lists
 * what gcr (the parent) does for it and which libc calls the container's
 * first process makes for it. The runner executes the list; `--trace`,
 * `--step` and `explain` are passes over the same list.
 *
 * @module
 */
import type { ChildArg, ChildCall } from "../ffi/chain.ts";
import type { ChildFunction } from "../ffi/libc.ts";
import { type BridgeAttachment } from "./plan.ts";
import type { ContainerJoin, Hook, HookKind, HookState } from "./hook_process.ts";

/** An id mapping line: `inside outside count`, as uid_map takes it. */
export interface IdMapping {
  readonly inside: number;
  readonly outside: number;
  readonly count: number;
}

/** What gcr itself does for a step, before the child's calls of that step. */
export type ParentOp =
  /**
   * `pidNamespace`: a /proc/<pid>/ns/pid file the parent joins for its
   * children just around the clone (setns CLONE_NEWPID), then leaves again.
   */
  | {
    readonly op: "clone";
    readonly flags: number;
    readonly show: string;
    readonly pidNamespace?: string;
    /**
     * gcr is non-dumpable just around the clone, so the child is born
     * non-dumpable (see nonDumpableUntilRestored). Not where gcr, as an
     * ordinary user, must still write the child's id maps: the kernel lets
     * it only into a dumpable process's /proc files (the non-dumpable step
     * follows map-ids there).
     */
    readonly nonDumpable?: boolean;
    /**
     * The child runs in gcr's own memory map until its exec (CLONE_VM, on a
     * thread area of its own: ffi/thread_area.ts): no copy of Deno's page
     * tables, no copy-on-write faults. Only for a child born non-dumpable
     * (gcr stays so until the exec) into namespaces no other process is in
     * yet, whose calls join no user namespace (the kernel refuses that to a
     * process sharing its memory map).
     */
    readonly sharesMemory?: boolean;
  }
  | {
    readonly op: "write-proc-file";
    readonly file: "setgroups" | "uid_map" | "gid_map" | "oom_score_adj";
    readonly content: string;
    /**
     * The warning when the kernel refuses, for a file whose value the
     * container can run without; absent: a refusal fails the step.
     */
    readonly refused?: (why: string) => string;
  }
  /** A set-uid helper such as newuidmap; `{pid}` in argv becomes the child's pid. */
  | { readonly op: "run-helper"; readonly argv: readonly string[] }
  /** Logs the `running as` line for the child, as observed in /proc. */
  | { readonly op: "log-identity"; readonly uidMap: readonly IdMapping[]; readonly gidMap: readonly IdMapping[] }
  /** Makes the child's process group the terminal's foreground group. */
  | { readonly op: "hand-terminal" }
  /**
   * Writes the child's pid into its cgroup's cgroup.procs files (one per
   * hierarchy on cgroup v1). `setup` says how gcr made that cgroup before
   * the clone, for trace and explain.
   */
  | { readonly op: "join-cgroup"; readonly setup: readonly string[]; readonly procs: readonly string[] }
  /**
   * After a `forks` call: the process it made (gcr's child too, by
   * CLONE_PARENT) becomes the one gcr drives, and the one that made it,
   * which has exited, is reaped.
   */
  | { readonly op: "adopt-child" }
  /** Joins the child's network namespace to the gcr0 bridge (net/bridge.ts); `show`: what that does. */
  | { readonly op: "connect-bridge"; readonly attachment: BridgeAttachment; readonly show: readonly string[] }
  /**
   * Runs config.json's hooks of one kind, in order, while the child waits at
   * its gate (runner/hooks.ts); the child's pid goes into the state and, for
   * the container's namespaces, is what the hook joins.
   */
  | {
    readonly op: "run-hooks";
    readonly kind: HookKind;
    readonly hooks: readonly Hook[];
    readonly state: Omit<HookState, "pid">;
    readonly place:
      | { readonly in: "runtime"; readonly cwd: string }
      | { readonly in: "container"; readonly join: Omit<ContainerJoin, "pid"> };
  };

export interface Step {
  /** kebab-case name used in logs and errors: `step mount-proc: …`. */
  readonly name: string;
  /** One sentence: why the container needs this, and why here in the order. */
  readonly why: string;
  readonly parent: readonly ParentOp[];
  readonly child: readonly ChildCall[];
  /**
   * Its calls never wait at a gate, not even in trace and step modes: they
   * must run before the child can block (die-with-parent: a child waiting
   * at a gate when gcr is killed would otherwise wait forever).
   */
  readonly runsAhead?: boolean;
}

/** An argument with the text trace and errors show for it. */
export interface Shown {
  readonly value: ChildArg;
  readonly show: string;
}

/** A C string argument, shown quoted. */
export function str(text: string): Shown {
  return { value: { string: text }, show: JSON.stringify(text) };
}

/** A NULL pointer argument. */
export const NULL: Shown = { value: null, show: "NULL" };

/** Flags shown symbolically: `flags(MS, "MS_", ["NOSUID", "NODEV"])` → `MS_NOSUID|MS_NODEV`. */
export function flags<T extends Record<string, number>>(
  table: T,
  prefix: string,
  names: readonly (keyof T & string)[],
): Shown {
  const value = names.reduce((sum, name) => sum | table[name]!, 0);
  return { value, show: names.length ? names.map((name) => prefix + name).join("|") : "0" };
}

/** A number argument with an optional symbolic name. */
export function num(value: number | bigint, show?: string): Shown {
  return { value, show: show ?? String(value) };
}

/** Any other argument: a value and how to show it. */
export function shown(value: ChildArg, show: string): Shown {
  return { value, show };
}

/** A child call; plain strings, numbers and null are wrapped for you. */
export function call(fn: ChildFunction, ...args: (Shown | string | number | null)[]): ChildCall {
  const wrapped = args.map((arg) =>
    arg === null ? NULL : typeof arg === "string" ? str(arg) : typeof arg === "number" ? num(arg) : arg
  );
  return {
    fn,
    args: wrapped.map((arg) => arg.value),
    show: `${fn}(${wrapped.map((arg) => arg.show).join(", ")})`,
  };
}

/**
 * A system call made through libc's syscall(2), shown under its own name:
 * for calls whose glibc wrapper is unsafe in the cloned child (see SYS).
 */
export function rawSyscall(name: string, number: number, ...args: (Shown | string | number | null)[]): ChildCall {
  const made = call("syscall", num(number), ...args);
  return { ...made, show: made.show.replace(/^syscall\(\d+(, )?/, `${name}(`) + ` [raw syscall ${number}]` };
}
