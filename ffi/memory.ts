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

/** Native bytes with views onto them, valid until the arena is freed. */
export interface NativeBlock {
  readonly pointer: Deno.PointerObject;
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

/** Small blocks are carved out of chunks of this size: one calloc and one view per chunk. */
const CHUNK_SIZE = 64 * 1024;

/**
 * malloc'd memory handed out in pieces, freed together once the child has
 * its copy. Building a chain takes a few hundred small blocks; carving them
 * from large chunks keeps that to a handful of FFI calls and ArrayBuffers.
 */
export class NativeArena {
  #allocations: Deno.PointerObject[] = [];
  #chunk: NativeBlock | undefined;
  #used = 0;

  #calloc(size: number): NativeBlock {
    const pointer = libc().calloc(1n, BigInt(size));
    if (!pointer) throw new Error(`cannot allocate ${size} bytes`);
    this.#allocations.push(pointer);
    const buffer = Deno.UnsafePointerView.getArrayBuffer(pointer, size);
    return { pointer, bytes: new Uint8Array(buffer), view: new DataView(buffer) };
  }

  /** `size` zeroed bytes, 16-byte aligned. */
  block(size: number): NativeBlock {
    const length = Math.max(size, 1);
    if (length > CHUNK_SIZE / 4) return this.#calloc(length);
    const offset = (this.#used + 15) & ~15;
    if (!this.#chunk || offset + length > CHUNK_SIZE) {
      this.#chunk = this.#calloc(CHUNK_SIZE);
      this.#used = 0;
      return this.block(size);
    }
    this.#used = offset + length;
    const { pointer, bytes } = this.#chunk;
    const piece = bytes.subarray(offset, offset + length);
    return {
      pointer: Deno.UnsafePointer.offset(pointer, offset)!,
      bytes: piece,
      view: new DataView(piece.buffer, piece.byteOffset, piece.byteLength),
    };
  }

  /**
   * `size` bytes for stacks, where only the top is ever touched. calloc: for
   * large sizes glibc maps fresh zero pages and skips the memset.
   */
  uninitialised(size: number): Deno.PointerObject {
    const pointer = libc().calloc(1n, BigInt(size));
    if (!pointer) throw new Error(`cannot allocate ${size} bytes`);
    this.#allocations.push(pointer);
    return pointer;
  }

  /** A copy of `bytes` in native memory. */
  bytes(bytes: Uint8Array): Deno.PointerObject {
    const block = this.block(bytes.length);
    block.bytes.set(bytes);
    return block.pointer;
  }

  /** A NUL-terminated copy of `text`. */
  cString(text: string): Deno.PointerObject {
    if (text.includes("\0")) throw new Error(`string contains a NUL byte: ${JSON.stringify(text)}`);
    return this.bytes(encoder.encode(text + "\0"));
  }

  /** A NULL-terminated `char *[]`, as argv and envp are. */
  cStringArray(texts: readonly string[]): Deno.PointerObject {
    const array = this.block((texts.length + 1) * 8);
    texts.forEach((text, i) => array.view.setBigUint64(i * 8, address(this.cString(text)), true));
    return array.pointer;
  }

  /** An 8-byte cell holding `value`, for APIs that take a pointer to it. */
  u64(value: bigint): Deno.PointerObject {
    const cell = this.block(8);
    cell.view.setBigUint64(0, value, true);
    return cell.pointer;
  }

  /** Frees every block. Safe once the child has been cloned (it has a copy). */
  free(): void {
    for (const pointer of this.#allocations) libc().free(pointer);
    this.#allocations = [];
    this.#chunk = undefined;
    this.#used = 0;
  }
}

/** A pointer's numeric address. */
export function address(pointer: Deno.PointerValue): bigint {
  return BigInt(Deno.UnsafePointer.value(pointer));
}
