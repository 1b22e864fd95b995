/**
 * The gated ucontext chain (docs/design.md §2): the cloned child runs only libc
 * code, one call after another, and never returns into V8.
 *
 * For every call the chain holds these contexts, each linked to the next
 * through `uc_link`:
 *
 *   read(gate, &byte, 1)            only where the parent must act or watch
 *                                   first: wait until it opens the gate
 *   fn(a1, …, a6)                   the call itself
 *   write(status, &errno, 4)        report errno (0 = success) to the parent
 *   memcpy(&next.rdx, &errno, 4)    errno becomes the next read's count…
 *   read(gate, &byte, errno)        …so this returns at once after success,
 *                                   and blocks after a failure until the
 *                                   parent, which reads every status, kills
 *                                   the child
 *
 * A chain cannot branch, but that last pair makes it stop at the first
 * failure without a round trip per call: the child runs ahead between gates,
 * and is still never past a failed call (fail closed).
 *
 * A run of calls in one step that only take something away (the bounding
 * set's drops: ~27 calls, a quarter of a container's chain) reports once,
 * with its last call, in a plain run: errno, which no call clears, carries
 * a failure there. The calls after a failed one still run, up to that last
 * one, and can only take more away; the child still never gets past the
 * run to a call that could depend on it (`ChainCall.reports`, gateCalls).
 *
 * errno is zeroed once, at the start: libc leaves it alone on success, and
 * the chain never gets past a failure, so it stays 0 until a call fails. (A
 * call that set errno on success would be reported as failed: fail closed.)
 *
 * Before the first call, a prologue moves the two pipes and the exec
 * trampoline (ffi/exec_trampoline.ts) to fixed descriptors
 * (`CHAIN_FDS`), so that steps can name them: close-fds keeps exactly 0-5,
 * and the next descriptor the child opens is 6.
 *
 * setcontext restores each context's `uc_sigmask`, so the masks are set
 * here as a plain sequence of calls would leave them: every signal blocked
 * (the child is cloned that way, see cloneChild) until a
 * `sigprocmask(SIG_SETMASK, set)` call, and `set` from then on.
 *
 * The status pipe is close-on-exec: end-of-file instead of a status after
 * the exec call means exec succeeded (the exec step hands the pipe to the
 * trampoline, which closes it the same way when it execs the command). If
 * the chain ever runs off its end, the last context calls `_exit(127)`
 * rather than glibc's default `exit(0)`, which would run the parent's
 * atexit handlers in the child.
 *
 * @module
 */
import { CONTEXT_STACK_SIZE, LAYOUT, O_CLOEXEC, SIG_SETMASK } from "./constants.ts";
import { type ChildFunction, childFunctions, libc, makecontext } from "./libc.ts";
import { address, type NativeArena, setU64, words } from "./memory.ts";
import { childThreadArea, type ThreadArea } from "./thread_area.ts";

/** An argument of a child call, as data; turned into a 64-bit value by `encode`. */
export type ChildArg =
  | number
  | bigint
  | null
  | { readonly string: string }
  | { readonly strings: readonly string[] }
  | { readonly bytes: Uint8Array }
  /**
   * A struct that holds pointers (struct sock_fprog): `bytes`, copied, with
   * the address of each `to` written as 8 bytes at its `offset`.
   */
  | { readonly struct: Uint8Array; readonly pointers: readonly { readonly offset: number; readonly to: ChildArg }[] }
  | { readonly pointerTo: ChildArg }
  | { readonly libcVariable: "environ" };

/** One libc call the child makes. `show` is how trace and errors print it. */
export interface ChildCall {
  readonly fn: ChildFunction;
  readonly args: readonly ChildArg[];
  readonly show: string;
  /**
   * The call moves the status pipe away: end-of-file instead of its status
   * means the child got past it and reports no more (the OCI start gate).
   */
  readonly endsReports?: boolean;
  /**
   * The call replaces the process (execveat of the trampoline): end-of-file
   * on the status pipe means the command runs; a negative status is the
   * errno of the trampoline's own exec of the command, which `then` shows.
   */
  readonly execs?: { readonly then: string };
  /**
   * libc's `clone(fn, stack, flags, arg)`, whose new process runs the rest
   * of the chain: buildChain fills in fn (setcontext), a stack and arg (the
   * rest, built as a chain of its own), and ends this process's chain here.
   * This is how a process that joined a PID namespace gets a child in it.
   */
  readonly forks?: boolean;
  /**
   * The call only takes something away (a capability from the bounding
   * set, a path from view), whatever came before it, and the calls after
   * it do not depend on it: a plain run reports a run of such calls in one
   * step once, with its last (gateCalls).
   */
  readonly takesAway?: boolean;
}

/**
 * Where the child holds its ends of the pipes and the trampoline after the
 * prologue. The parent keeps its own at 6 or above (`openChainPipes`), so
 * the dup3 calls never overwrite each other's source.
 */
export const CHAIN_FDS = { gate: 3, status: 4, trampoline: 5, firstFree: 6 } as const;

/** Where the chain's descriptors are. */
export interface ChainLayout {
  readonly gate: number;
  readonly status: number;
  /** The sealed memfd of the exec trampoline, close-on-exec. */
  readonly trampoline: number;
  readonly firstFree: number;
}

/**
 * The layout when the first `preserved` descriptors after stdio (3, 4, …)
 * belong to the command (OCI `create --preserve-fds N`, as runc passes them):
 * the chain's own move up by as many.
 */
export function chainLayout(preserved = 0): ChainLayout {
  const at = (fd: number) => fd + preserved;
  return { gate: at(3), status: at(4), trampoline: at(5), firstFree: at(6) };
}

/** File descriptors (in the parent) of the two pipes between parent and child. */
export interface ChainPipes {
  /** The child reads one byte from it before each call. */
  readonly gateRead: number;
  /** The child writes 4 bytes of errno to it after each call. */
  readonly statusWrite: number;
  /** The exec trampoline's sealed memfd (ffi/exec_trampoline.ts). */
  readonly trampoline: number;
  /**
   * More descriptors the child gets at fixed numbers from `CHAIN_FDS.firstFree`
   * on (the OCI start FIFO, a console socket), moved there by the prologue.
   * Their parent numbers must be above every target (see inheritableFd).
   */
  readonly inherit?: readonly { readonly from: number; readonly to: number }[];
  /** Where the child keeps the pipes (default CHAIN_FDS); sources must be above `firstFree` and every target. */
  readonly layout?: ChainLayout;
}

/**
 * A built chain: the first context, to pass to clone as setcontext's
 * argument, and the child's thread pointer, clone's `tls`.
 */
export interface Chain {
  readonly start: Deno.PointerObject;
  readonly setcontext: Deno.PointerObject;
  readonly threadPointer: Deno.PointerObject;
}

/**
 * Turns an argument into the register value the child receives, as a safe
 * integer (negative values travel as two's complement).
 */
export function encode(arena: NativeArena, arg: ChildArg): number {
  if (arg === null) return 0;
  if (typeof arg === "number" || typeof arg === "bigint") {
    const value = Number(arg);
    if (!Number.isSafeInteger(value)) throw new Error(`child argument ${arg} is not a safe integer`);
    return value;
  }
  if ("string" in arg) return arena.cString(arg.string);
  if ("strings" in arg) return arena.cStringArray(arg.strings);
  if ("bytes" in arg) return arena.bytes(arg.bytes);
  if ("struct" in arg) {
    const block = arena.block(arg.struct.length);
    block.bytes.set(arg.struct);
    for (const { offset, to } of arg.pointers) setU64(block.words, offset, encode(arena, to));
    return block.address;
  }
  if ("pointerTo" in arg) return arena.u64(encode(arena, arg.pointerTo));
  if ("libcVariable" in arg) return address(libc().environ);
  const never: never = arg;
  throw new Error(`unknown child argument ${JSON.stringify(never)}`);
}

/** The signal mask after `call`: changed only by sigprocmask(SIG_SETMASK, set). */
function maskAfter(call: ChildCall, mask: Uint8Array): Uint8Array {
  if (call.fn !== "sigprocmask") return mask;
  const [how, set] = call.args;
  if (how !== SIG_SETMASK || set === null || typeof set !== "object" || !("bytes" in set)) {
    throw new Error("the chain supports sigprocmask(SIG_SETMASK, {bytes}) only");
  }
  return set.bytes;
}

/**
 * Where context i's stack starts (its top, as an offset into the one stack
 * region): 16 bytes above context i-1's. makecontext puts two words just
 * below the top (__start_context's address, then uc_link), so each context
 * has its own two words; its function's frames grow down from there, over
 * the words of contexts that have already run, never over those of
 * contexts still to run, which sit higher. Every context keeps at least
 * CONTEXT_STACK_SIZE below it, and the chain needs one region of that size
 * instead of one per context (a chain has ~360): fewer pages to allocate,
 * and fewer for the child to copy on write.
 */
function stackTop(i: number): number {
  return CONTEXT_STACK_SIZE + (i + 1) * 16;
}

/**
 * A call in the chain; `gate`: the child waits for the parent before it.
 * `reports: false`: no status of its own. A failure then shows in the next
 * call that reports: no call clears errno, so that call's status is the
 * failure's errno even if it succeeded itself, and the child stops there.
 */
export interface ChainCall {
  readonly call: ChildCall;
  readonly gate: boolean;
  readonly reports?: boolean;
}

/** Stack of the process a `forks` call makes, before it switches to its chain's contexts. */
const FORK_STACK_SIZE = 16 * 1024;

/**
 * Builds the chain for `calls` in `arena`; nothing runs until clone. A
 * `continuation` (the calls after a `forks` call) has no prologue: the new
 * process inherits the pipes at their places already, and its thread area
 * (ffi/thread_area.ts): the one `thread` the whole chain is built for.
 */
export function buildChain(
  arena: NativeArena,
  calls: readonly ChainCall[],
  pipes: ChainPipes,
  continuation = false,
  thread: ThreadArea = childThreadArea(arena),
): Chain {
  const fork = calls.findIndex(({ call }) => call.forks);
  if (fork !== -1) {
    const rest = buildChain(arena, calls.slice(fork + 1), pipes, true, thread);
    const stack = arena.uninitialised(FORK_STACK_SIZE);
    const forking = calls[fork]!;
    const [, , flags] = forking.call.args;
    const resolved: ChainCall = {
      ...forking,
      call: {
        ...forking.call,
        args: [address(rest.setcontext), address(stack) + FORK_STACK_SIZE - 16, flags ?? 0, address(rest.start)],
        forks: false, // resolved: its process's chain ends after it
      },
    };
    return buildChain(arena, [...calls.slice(0, fork), resolved], pipes, continuation, thread);
  }
  const { ucontext } = LAYOUT;
  const { errno } = thread;
  const zero = arena.block(4).address;
  const scratch = arena.block(8).address;

  // An argument is a value, or "the address of the RDX register slot of
  // the context n places further on", resolved once all contexts have a place.
  type Arg = number | { readonly rdxOfContextAhead: number };
  type Context = { fn: ChildFunction; args: Arg[]; mask: Uint8Array };
  // Every signal (sigset_t is 1024 bits; the kernel ignores SIGKILL, SIGSTOP).
  let mask: Uint8Array = new Uint8Array(LAYOUT.sigset.size).fill(0xff);
  const { gate, status, trampoline } = pipes.layout ?? CHAIN_FDS;
  const contexts: Context[] = [
    { fn: "memcpy", args: [errno, zero, 4], mask },
    ...(continuation ? [] : [
      { fn: "dup3" as const, args: [pipes.gateRead, gate, O_CLOEXEC], mask },
      { fn: "dup3" as const, args: [pipes.statusWrite, status, O_CLOEXEC], mask },
      { fn: "dup3" as const, args: [pipes.trampoline, trampoline, O_CLOEXEC], mask },
      ...(pipes.inherit ?? []).map(({ from, to }) => ({ fn: "dup3" as const, args: [from, to, O_CLOEXEC], mask })),
    ]),
  ];
  for (const [index, { call, gate: waits, reports }] of calls.entries()) {
    if (call.args.length > 6) throw new Error(`${call.fn}: at most 6 arguments fit in registers`);
    if (reports === false && (call.execs || call.endsReports || call.forks || index === calls.length - 1)) {
      throw new Error(`${call.show}: only a call that some later call reports for may go unreported`);
    }
    if (waits) contexts.push({ fn: "read", args: [gate, scratch, 1], mask });
    contexts.push({ fn: call.fn, args: call.args.map((arg) => encode(arena, arg)), mask });
    mask = maskAfter(call, mask);
    if (reports === false) continue;
    contexts.push(
      { fn: "write", args: [status, errno, 4], mask },
      { fn: "memcpy", args: [{ rdxOfContextAhead: 1 }, errno, 4], mask },
      { fn: "read", args: [gate, scratch, 0], mask },
    );
  }
  contexts.push({ fn: "_exit", args: [127], mask });

  // One block for all contexts and one stack for all of them (see stackTop).
  // getcontext runs once; each context starts as a copy of that template
  // with the stack region and its signal mask already in (one copy per
  // distinct mask: a chain has two), and then gets what is its own: its
  // fpregs pointer (to its own __fpregs_mem), stack size and link, and
  // from makecontext its call. makecontext takes numbers, Deno's fast call
  // path: its calls cost no more than writing the same registers and stack
  // words from JavaScript did (measured with ~450: 1.2-1.3 ms either way).
  // Built back to front so each can link to the one after it.
  const all = arena.block(contexts.length * ucontext.size);
  const contextWords = words(all.bytes);
  const stackBytes = stackTop(contexts.length) + 16;
  const stacks = arena.uninitialised(stackBytes);
  const template = arena.block(ucontext.size);
  if (libc().getcontext(template.pointer) !== 0) throw new Error("getcontext failed");
  const stacksAt = address(stacks);
  setU64(template.words, ucontext.uc_stack_ss_sp, stacksAt);
  template.words[ucontext.uc_stack_ss_flags >> 2] = 0;
  const templates = new Map<Uint8Array, Uint8Array>();
  const templateFor = (mask: Uint8Array) => {
    let made = templates.get(mask);
    if (!made) {
      made = template.bytes.slice();
      made.set(mask, ucontext.uc_sigmask);
      templates.set(mask, made);
    }
    return made;
  };
  const contextAddress = (i: number) => all.address + i * ucontext.size;
  const functions = childFunctions([...contexts.map((context) => context.fn), "setcontext"]);
  const addressOf = new Map([...functions].map(([name, pointer]) => [name, address(pointer)]));
  let next = 0;
  for (let i = contexts.length - 1; i >= 0; i--) {
    const context = contexts[i]!;
    const base = i * ucontext.size;
    all.bytes.set(templateFor(context.mask), base);
    setU64(contextWords, base + ucontext.fpregs, contextAddress(i) + ucontext.fpregs_mem);
    setU64(contextWords, base + ucontext.uc_stack_ss_size, stackTop(i));
    setU64(contextWords, base + ucontext.uc_link, next);
    const args = context.args.map((arg) =>
      typeof arg === "number" ? arg : contextAddress(i + arg.rdxOfContextAhead) + ucontext.gregs_rdx
    );
    makecontext(contextAddress(i), addressOf.get(context.fn)!, args.length, args);
    next = contextAddress(i);
  }
  return {
    start: Deno.UnsafePointer.create(BigInt(next))!,
    setcontext: functions.get("setcontext")!,
    threadPointer: Deno.UnsafePointer.create(BigInt(thread.pointer))!,
  };
}
