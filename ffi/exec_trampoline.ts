/**
 * gcr-exec, the exec trampoline (its source and why: exec_trampoline.S):
 * 402 bytes of x86_64 code in a 176-byte ELF, in a sealed memfd that every
 * container process execveat()s instead of exec'ing its command from a clone
 * of gcr's Deno. From then on /proc/<pid>/exe names that memfd, which nothing
 * can write (F_SEAL_WRITE, …), instead of the host's deno binary.
 *
 * @module
 */
import { TRAMPOLINE_CODE } from "./exec_trampoline_code.ts";
import { elfProgram, sealedProgram } from "./native_program.ts";

/** Its argv[0], and the memfd's name in /proc/<pid>/fd. */
export const TRAMPOLINE_NAME = "gcr-exec";

/** The trampoline as an ELF executable. */
export function trampolineElf(): Uint8Array {
  return elfProgram(TRAMPOLINE_CODE);
}

/** A new sealed, close-on-exec memfd holding the trampoline. */
export function sealedTrampoline(): number {
  return sealedProgram(TRAMPOLINE_NAME, TRAMPOLINE_CODE);
}
