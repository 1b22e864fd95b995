/**
 * The container's first process as the parent sees it: cloned by libc with
 * namespace flags, driven through the gate and status pipes, waited for.
 *
 * @module
 */
import { type Chain, CHAIN_FDS } from "./chain.ts";
import {
  CLONE,
  CLONE_STACK_SIZE,
  ERRNO,
  LAYOUT,
  O,
  O_CLOEXEC,
  PR_GET_DUMPABLE,
  PR_SET_DUMPABLE,
  SIG_BLOCK,
  SIG_SETMASK,
  SIGNALS,
  WNOHANG,
} from "./constants.ts";
import { check, lastErrno, SyscallError } from "./errno.ts";
import { libc } from "./libc.ts";
import { moveFdAbove, openFd } from "./fds.ts";
import type { NativeArena } from "./memory.ts";

/** The parent's and the child's ends of the two chain pipes. */
export interface ChainPipeFds {
  readonly gateRead: number;
  readonly gateWrite: number;
  readonly statusRead: number;
  readonly statusWrite: number;
}

/** A close-on-exec pipe whose ends are both above the chain's fixed fds. */
function pipeAboveChainFds(floor: number): [number, number] {
  const fds = new Int32Array(2);
  check(libc().pipe2(fds, O_CLOEXEC), "pipe2(O_CLOEXEC)");
  return [...fds].map((fd) => moveFdAbove(fd, floor)) as [number, number];
}

/** Opens the gate and status pipes. */
export function openChainPipes(floor: number = CHAIN_FDS.firstFree): ChainPipeFds {
  const [gateRead, gateWrite] = pipeAboveChainFds(floor);
  const [statusRead, statusWrite] = pipeAboveChainFds(floor);
  return { gateRead, gateWrite, statusRead, statusWrite };
}

/** Closes the given descriptors, ignoring those already closed. */
export function closeFds(...fds: number[]): void {
  for (const fd of fds) libc().close(fd);
}

/**
 * clone(2) through libc: the child starts in setcontext(chain.start), on
 * its own thread area (CLONE_SETTLS, ffi/thread_area.ts), and with
 * `sharesMemory` in gcr's own memory map until it execs (CLONE_VM).
 *
 * All signals are blocked around the call so the child starts with every
 * signal blocked: until it execs it still has the parent's (Deno's) handlers,
 * which must not run in it. Its reset-signals step unblocks them before exec.
 */
export function cloneChild(
  arena: NativeArena,
  chain: Chain,
  flags: number,
  show: string,
  sharesMemory = false,
): number {
  const everySignal = new Uint8Array(LAYOUT.sigset.size).fill(0xff);
  const saved = new Uint8Array(LAYOUT.sigset.size);
  libc().pthread_sigmask(SIG_BLOCK, everySignal, saved);
  const stack = arena.uninitialised(CLONE_STACK_SIZE);
  // The stack grows down: pass its top, 16-byte aligned as the ABI requires.
  const top = Deno.UnsafePointer.offset(stack, CLONE_STACK_SIZE - 16);
  const how = flags | CLONE.SETTLS | (sharesMemory ? CLONE.VM : 0) | SIGNALS.SIGCHLD;
  const pid = libc().clone(chain.setcontext, top, how, chain.start, null, chain.threadPointer, null);
  const errno = lastErrno();
  libc().pthread_sigmask(SIG_SETMASK, saved, new Uint8Array(LAYOUT.sigset.size));
  if (pid === -1) throw new SyscallError(`clone(${show})`, errno);
  return pid;
}

/**
 * Makes gcr itself non-dumpable, so a child cloned now is born so (the
 * flag lives in the memory map, which clone copies, or with CLONE_VM
 * shares), and returns the function that restores gcr's own: just after
 * the clone, or, for a child that shares gcr's memory map, once it has
 * exec'd or died. A non-dumpable process's /proc/<pid>/exe, mem, fd/ and
 * the like open only to holders of CAP_SYS_PTRACE over the host's user
 * namespace: a child that starts in a namespace the container's processes
 * can see (gcr exec) is never, not for an instant, open to them while it
 * is still a clone of gcr's Deno, whose exe is the host's deno binary
 * (CVE-2019-5736), nor is gcr's own memory while the child runs in it.
 */
export function nonDumpableUntilRestored(): () => void {
  const was = libc().prctl(PR_GET_DUMPABLE, 0n, 0n, 0n, 0n);
  check(libc().prctl(PR_SET_DUMPABLE, 0n, 0n, 0n, 0n), "prctl(PR_SET_DUMPABLE, 0)");
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    libc().prctl(PR_SET_DUMPABLE, BigInt(was), 0n, 0n, 0n);
  };
}

/**
 * Makes `path` (a /proc/<pid>/ns/pid file) the PID namespace of this
 * thread's next children, and returns the function that restores its own.
 * Only the calling thread changes, and only for children: gcr itself stays
 * where it is. Both setns calls need CAP_SYS_ADMIN in gcr's user namespace.
 */
export function pidNamespaceForChildren(path: string): () => void {
  const open = (file: string) => openFd(file, O.RDONLY);
  const own = open("/proc/self/ns/pid");
  try {
    const target = open(path);
    try {
      check(libc().setns(target, CLONE.NEWPID), `setns(${path}, CLONE_NEWPID)`);
    } finally {
      libc().close(target);
    }
  } catch (error) {
    libc().close(own);
    throw error;
  }
  return () => {
    try {
      check(libc().setns(own, CLONE.NEWPID), "setns(/proc/self/ns/pid, CLONE_NEWPID)");
    } finally {
      libc().close(own);
    }
  };
}

/** Lets the child run its next call. */
export function openGate(gateWrite: number): void {
  const byte = new Uint8Array([1]);
  check(Number(libc().write(gateWrite, byte, 1n)), "write(gate)");
}

/**
 * The child's statuses, in order: each call returns the errno the child
 * reported for its next call (0 for success), or `null` when the pipe
 * closed instead (the child exec'd, or died). One read(2) takes every
 * status already in the pipe: the child runs ahead between gates, and
 * gcr catches up with one call per batch instead of one per status (~9 us
 * each, cold). Pipe writes of 4 bytes are atomic, so the buffer holds
 * whole statuses unless the child died mid-write.
 */
export function statusReader(statusRead: number): () => number | null {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  let at = 0;
  let end = 0;
  return () => {
    while (end - at < 4) {
      bytes.copyWithin(0, at, end);
      end -= at;
      at = 0;
      const n = Number(libc().read(statusRead, bytes.subarray(end), BigInt(bytes.length - end)));
      if (n === 0) return null;
      if (n === -1) {
        if (lastErrno() === ERRNO.EINTR) continue;
        throw new SyscallError("read(status)", lastErrno());
      }
      end += n;
    }
    at += 4;
    return view.getInt32(at - 4, true);
  };
}

/** Sends a signal to the child; ignores a child that is already gone. */
export function signalChild(pid: number, signal: number): void {
  libc().kill(pid, signal);
}

/** How the child ended. */
export type ExitStatus = { readonly exited: number } | { readonly signaled: number };

function decode(status: number): ExitStatus {
  const signal = status & 0x7f;
  return signal === 0 ? { exited: (status >> 8) & 0xff } : { signaled: signal };
}

/** Waits for the child without blocking the event loop. */
export async function waitChild(arena: NativeArena, pid: number): Promise<ExitStatus> {
  const cell = arena.block(4).pointer;
  for (;;) {
    const result = await libc().waitpid(pid, cell, 0);
    if (result === pid) return decode(new Deno.UnsafePointerView(cell).getInt32(0));
    // errno of a call made on another thread cannot be read here: ask again
    // on this thread, without blocking, to tell EINTR from ECHILD.
    const status = new Int32Array(1);
    const again = libc().waitpid_now(pid, new Uint8Array(status.buffer), WNOHANG);
    if (again === pid) return decode(status[0]!);
    if (again === -1) throw new SyscallError(`waitpid(${pid})`, lastErrno());
  }
}

/** Kills and reaps the child: the fail-closed path after a failed step. */
export function killChild(pid: number): void {
  signalChild(pid, SIGNALS.SIGKILL);
  const status = new Int32Array(1);
  while (libc().waitpid_now(pid, new Uint8Array(status.buffer), 0) === -1 && lastErrno() === ERRNO.EINTR) {
    // EINTR: try again
  }
}
