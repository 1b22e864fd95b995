/**
 * Native memory for the child. Everything the cloned child touches before it
 * execs (contexts, their stacks, strings, argv/envp) must come from libc
 * malloc: V8 marks its own heaps MADV_DONTFORK, so a JS ArrayBuffer is not
 * mapped in the child at all (DESIGN.md §1).
 *
 * @module
 */
import { libc } from "./libc.ts";

const encoder = new TextEncoder();

/** A set of malloc'd blocks, freed together once the child has its copy. */
export class NativeArena {
  #blocks: Deno.PointerObject[] = [];

  /** `size` bytes from malloc; zeroed when `zero` is set. */
  alloc(size: number, zero = false): Deno.PointerObject {
    const block = zero ? libc().calloc(1n, BigInt(size)) : libc().malloc(BigInt(size));
    if (!block) throw new Error(`cannot allocate ${size} bytes`);
    this.#blocks.push(block);
    return block;
  }

  /** A writable view of native memory at `pointer`. */
  view(pointer: Deno.PointerObject, size: number): DataView {
    return new DataView(Deno.UnsafePointerView.getArrayBuffer(pointer, size));
  }

  /** A copy of `bytes` in native memory. */
  bytes(bytes: Uint8Array): Deno.PointerObject {
    const block = this.alloc(Math.max(bytes.length, 1));
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(block, bytes.length)).set(bytes);
    return block;
  }

  /** A NUL-terminated copy of `text`. */
  cString(text: string): Deno.PointerObject {
    if (text.includes("\0")) throw new Error(`string contains a NUL byte: ${JSON.stringify(text)}`);
    return this.bytes(encoder.encode(text + "\0"));
  }

  /** A NULL-terminated `char *[]`, as argv and envp are. */
  cStringArray(texts: readonly string[]): Deno.PointerObject {
    const array = this.alloc((texts.length + 1) * 8, true);
    const view = this.view(array, (texts.length + 1) * 8);
    texts.forEach((text, i) => view.setBigUint64(i * 8, address(this.cString(text)), true));
    return array;
  }

  /** An 8-byte cell holding `value`, for APIs that take a pointer to it. */
  u64(value: bigint): Deno.PointerObject {
    const cell = this.alloc(8);
    this.view(cell, 8).setBigUint64(0, value, true);
    return cell;
  }

  /** Frees every block. Safe once the child has been cloned (it has a copy). */
  free(): void {
    for (const block of this.#blocks) libc().free(block);
    this.#blocks = [];
  }
}

/** A pointer's numeric address. */
export function address(pointer: Deno.PointerValue): bigint {
  return BigInt(Deno.UnsafePointer.value(pointer));
}
