/**
 * The child's own thread area. A container's first process is cloned with
 * CLONE_VM (where the clone op `sharesMemory`): until its exec it runs in
 * gcr's own memory, so the kernel copies none of Deno's page tables at the
 * clone and neither process takes copy-on-write faults afterwards. But
 * CLONE_VM alone would also leave the child on the parent thread's %fs, so
 * the two would share libc's thread-local errno: the chain reads errno
 * after every call (ffi/chain.ts), while gcr's main thread runs Deno's
 * event loop, whose calls set errno on every EAGAIN. A child sharing it
 * reported failures that were gcr's (seen here: an ENOENT for the first
 * mount).
 *
 * So the child gets its own %fs (CLONE_SETTLS): a copy of the parent
 * thread's area, from the page holding errno (libc's TLS block, which on
 * x86_64 lies below the thread pointer) up to the end of its struct
 * pthread, with the header's two self-pointers moved to the copy. Every
 * TLS access in the child then lands in the copy: errno, the stack
 * protector's canary and THREAD_SELF's fields (a cancellable call's
 * bookkeeping). The copy keeps each byte's offset within its page, so
 * every field keeps its alignment. Every clone uses one, with or without
 * CLONE_VM: one way for the chain to find errno.
 *
 * @module
 */
import { ARCH_GET_FS, THREAD_CONTROL_BLOCK } from "./constants.ts";
import { check } from "./errno.ts";
import { libc } from "./libc.ts";
import { address, type NativeArena, setU64 } from "./memory.ts";

/** The copy's thread pointer (clone's `tls`) and where its errno is. */
export interface ThreadArea {
  readonly pointer: number;
  readonly errno: number;
}

const PAGE = 4096;

/** A copy of the calling thread's area in `arena`, for the child's %fs. */
export function childThreadArea(arena: NativeArena): ThreadArea {
  const cell = new BigUint64Array(1);
  check(libc().arch_prctl(ARCH_GET_FS, new Uint8Array(cell.buffer)), "arch_prctl(ARCH_GET_FS)");
  const thread = Number(cell[0]);
  const errno = address(libc().__errno_location());
  // One allocation holds the static TLS blocks and the struct pthread
  // above them, so everything from errno's page to the struct's end is mapped.
  const from = errno - (errno % PAGE);
  const size = thread - from + THREAD_CONTROL_BLOCK.size;
  if (errno >= thread || size > 16 * PAGE) {
    throw new Error(`errno at ${errno - thread} from the thread pointer: not x86_64 glibc's layout`);
  }
  const copy = arena.pages(size);
  copy.bytes.set(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(BigInt(from))!, size)));
  const pointer = copy.address + (thread - from);
  const words = copy.words;
  setU64(words, thread - from + THREAD_CONTROL_BLOCK.tcb, pointer);
  setU64(words, thread - from + THREAD_CONTROL_BLOCK.self, pointer);
  return { pointer, errno: copy.address + (errno - from) };
}
