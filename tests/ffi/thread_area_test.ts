/**
 * The child's own thread area (ffi/thread_area.ts): glibc's thread control
 * block as gcr records it, checked against this very thread, and a child
 * cloned into this process's memory map that reports its own errno while
 * the parent sets its own.
 */
import { buildChain } from "../../ffi/chain.ts";
import { cloneChild, closeFds, killChild, openChainPipes, statusReader } from "../../ffi/child.ts";
import { ARCH_GET_FS, ERRNO, O, PR_GET_DUMPABLE, THREAD_CONTROL_BLOCK } from "../../ffi/constants.ts";
import { lastErrno } from "../../ffi/errno.ts";
import { libc } from "../../ffi/libc.ts";
import { getU64, NativeArena, words } from "../../ffi/memory.ts";
import { childThreadArea } from "../../ffi/thread_area.ts";
import { call } from "../../steps/step.ts";
import { named } from "../fixtures.ts";
import { assert, assertEquals } from "../helpers.ts";

const X86_64 = Deno.build.arch === "x86_64" ? undefined : `glibc's x86_64 layout; this is ${Deno.build.arch}`;

function threadPointer(): number {
  const cell = new BigUint64Array(1);
  assertEquals(libc().arch_prctl(ARCH_GET_FS, new Uint8Array(cell.buffer)), 0, "arch_prctl(ARCH_GET_FS)");
  return Number(cell[0]);
}

function wordsAt(at: number, size: number): Uint32Array {
  return words(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(BigInt(at))!, size)));
}

Deno.test(named("the thread control block: its tcb and self words name the thread, its size is libc's", X86_64), () => {
  const thread = threadPointer();
  const header = wordsAt(thread, 32);
  assertEquals(getU64(header, THREAD_CONTROL_BLOCK.tcb), thread, "tcb: the block's own address");
  assertEquals(getU64(header, THREAD_CONTROL_BLOCK.self), thread, "self: THREAD_SELF, the struct pthread");
  // glibc keeps sizeof(struct pthread) for debuggers: a uint32_t descriptor whose first word is the size.
  const { _thread_db_sizeof_pthread: record } = Deno.dlopen("libc.so.6", {
    _thread_db_sizeof_pthread: { type: "pointer" },
  }).symbols;
  assert(record, "libc has _thread_db_sizeof_pthread");
  assertEquals(new Deno.UnsafePointerView(record).getUint32(0), THREAD_CONTROL_BLOCK.size, "sizeof(struct pthread)");
});

Deno.test(named("the child's thread area: a copy whose errno and self-pointers are its own", X86_64), () => {
  const arena = new NativeArena();
  try {
    const thread = threadPointer();
    const errno = Number(Deno.UnsafePointer.value(libc().__errno_location()));
    const area = childThreadArea(arena);
    assertEquals(area.errno - area.pointer, errno - thread, "errno at the same offset from the thread pointer");
    assertEquals(area.pointer % 4096, thread % 4096, "the same place within its page: every field keeps its alignment");
    const header = wordsAt(area.pointer, 48);
    assertEquals(getU64(header, THREAD_CONTROL_BLOCK.tcb), area.pointer, "tcb names the copy");
    assertEquals(getU64(header, THREAD_CONTROL_BLOCK.self), area.pointer, "self names the copy");
    const guard = 0x28; // tcbhead_t.stack_guard: the stack protector's canary, which must not change under libc
    const canary = (at: Uint32Array) => [...at.subarray(guard >> 2, (guard >> 2) + 2)];
    assertEquals(canary(header), canary(wordsAt(thread, 48)), "the canary copied");
  } finally {
    arena.free();
  }
});

Deno.test(
  named("a child in this process's memory map reports its own errno; the parent's stays its own", X86_64),
  () => {
    const arena = new NativeArena();
    const pipes = openChainPipes();
    let pid = 0;
    try {
      // A gate, then a call that succeeds (prctl reads), then one that fails (close of a closed descriptor).
      const calls = [
        { call: call("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0), gate: true },
        { call: call("close", 1000), gate: false },
      ];
      const chain = buildChain(arena, calls, { ...pipes, trampoline: pipes.gateRead });
      pid = cloneChild(arena, chain, 0, "CLONE_VM (test)", true);
      closeFds(pipes.gateRead, pipes.statusWrite);
      // The child waits at its gate. The parent's errno now says ENOENT; with a
      // shared thread area the child would report that for its prctl.
      assertEquals(libc().openat(-100, new TextEncoder().encode("/nonexistent-gcr-test\0"), O.RDONLY, 0), -1);
      assertEquals(lastErrno(), ERRNO.ENOENT, "the parent's errno");
      libc().write(pipes.gateWrite, new Uint8Array([1]), 1n);
      const next = statusReader(pipes.statusRead);
      assertEquals(next(), 0, "the child's prctl succeeded: its errno is its own");
      assertEquals(next(), 9, /* EBADF */ "the child's close failed with its own errno");
      assertEquals(lastErrno(), ERRNO.ENOENT, "the parent's errno is untouched by the child's failure");
    } finally {
      if (pid > 0) killChild(pid);
      closeFds(pipes.gateWrite, pipes.statusRead);
      if (pid === 0) closeFds(pipes.gateRead, pipes.statusWrite);
      arena.free();
    }
  },
);
