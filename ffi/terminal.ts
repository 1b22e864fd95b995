/**
 * Handing the controlling terminal's foreground to the container and back.
 *
 * @module
 */
import { LAYOUT, SIG_BLOCK, SIG_SETMASK, SIGNALS } from "./constants.ts";
import { libc } from "./libc.ts";

/**
 * Runs `fn` with SIGTTOU blocked: tcsetpgrp from a background process group
 * otherwise stops the caller (tcsetpgrp(3)), which is what gcr is once the
 * container owns the terminal.
 */
function withoutTtou<T>(fn: () => T): T {
  const set = new Uint8Array(LAYOUT.sigset.size);
  set[0] = 1 << (SIGNALS.SIGTTOU - 1);
  const saved = new Uint8Array(LAYOUT.sigset.size);
  libc().pthread_sigmask(SIG_BLOCK, set, saved);
  try {
    return fn();
  } finally {
    libc().pthread_sigmask(SIG_SETMASK, saved, new Uint8Array(LAYOUT.sigset.size));
  }
}

/** A standard descriptor on a terminal whose foreground group is gcr's, if any. */
export function foregroundTerminal(): number | undefined {
  // Deno's own isTerminal first: binding libc functions costs time, and
  // without a terminal (scripts, benchmarks) none of them is needed.
  const terminals = [Deno.stdin, Deno.stdout, Deno.stderr].flatMap((stream, fd) => stream.isTerminal() ? [fd] : []);
  if (terminals.length === 0) return undefined;
  const ownGroup = libc().getpgrp();
  return terminals.find((fd) => libc().tcgetpgrp(fd) === ownGroup);
}

/**
 * Makes process group `pgid` the foreground group of the terminal on `fd`.
 * Returns the function that gives the terminal back to gcr.
 */
export function handTerminal(fd: number, pgid: number): () => void {
  const ownGroup = libc().getpgrp();
  withoutTtou(() => libc().tcsetpgrp(fd, pgid));
  return () => withoutTtou(() => libc().tcsetpgrp(fd, ownGroup));
}
