/**
 * Native memory for the child. Everything the cloned child touches before it
 * execs (contexts, their stacks, strings, argv/envp) must be memory of gcr's
 * own mapping: V8 marks its own heaps MADV_DONTFORK, so a JS ArrayBuffer is
 * not mapped in the child at all (docs/design.md §1). Anonymous private
 * mappings, made through the syscall() binding the parent's plain calls
 * share: calloc and free would cost a binding of their own each.
 *
 * @module
 */
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "./constants.ts";
import { lastErrno, SyscallError } from "./errno.ts";
import { libc } from "./libc.ts";

const encoder = new TextEncoder();

/** Native bytes with views onto them, valid until the arena is freed. */
export class NativeBlock {
  constructor(readonly address: number, readonly bytes: Uint8Array) {}

  /** Made on demand: building a chain takes hundreds of blocks that never need them. */
  get words(): Uint32Array {
    return words(this.bytes);
  }

  get pointer(): Deno.PointerObject {
    return Deno.UnsafePointer.create(BigInt(this.address))!;
  }
}

/** Small blocks are carved out of chunks of this size: one mapping and one view per chunk. */
const CHUNK_SIZE = 64 * 1024;

/**
 * Mapped memory handed out in pieces, unmapped together once the child has
 * its copy. Building a chain takes a few hundred small blocks; carving them
 * from large chunks keeps that to a handful of FFI calls and ArrayBuffers.
 */
export class NativeArena {
  #mappings: { address: number; size: number }[] = [];
  #chunk: NativeBlock | undefined;
  #used = 0;

  /** `size` bytes of fresh zero pages (the kernel's: nothing to clear). */
  #map(size: number): number {
    const mapped = Number(libc().mmap(0n, BigInt(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n));
    if (mapped === -1) throw new SyscallError(`mmap(${size} bytes, anonymous)`, lastErrno());
    this.#mappings.push({ address: mapped, size });
    return mapped;
  }

  #mapBlock(size: number): NativeBlock {
    const mapped = this.#map(size);
    const pointer = Deno.UnsafePointer.create(BigInt(mapped))!;
    return new NativeBlock(mapped, new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, size)));
  }

  /** `size` zeroed bytes, 16-byte aligned. */
  block(size: number): NativeBlock {
    const length = Math.max(size, 1);
    if (length > CHUNK_SIZE / 4) return this.#mapBlock(length);
    const offset = (this.#used + 15) & ~15;
    if (!this.#chunk || offset + length > CHUNK_SIZE) {
      this.#chunk = this.#mapBlock(CHUNK_SIZE);
      this.#used = 0;
      return this.block(size);
    }
    this.#used = offset + length;
    return new NativeBlock(this.#chunk.address + offset, this.#chunk.bytes.subarray(offset, offset + length));
  }

  /** `size` zeroed bytes in a mapping of their own: page-aligned. */
  pages(size: number): NativeBlock {
    return this.#mapBlock(size);
  }

  /** `size` bytes for stacks, where only the top is ever touched: no view onto them. */
  uninitialised(size: number): Deno.PointerObject {
    return Deno.UnsafePointer.create(BigInt(this.#map(size)))!;
  }

  /** A copy of `bytes` in native memory; returns its address. */
  bytes(bytes: Uint8Array): number {
    const block = this.block(bytes.length);
    block.bytes.set(bytes);
    return block.address;
  }

  /** A NUL-terminated copy of `text`; returns its address. */
  cString(text: string): number {
    if (text.includes("\0")) throw new Error(`string contains a NUL byte: ${JSON.stringify(text)}`);
    return this.bytes(encoder.encode(text + "\0"));
  }

  /** A NULL-terminated `char *[]`, as argv and envp are; returns its address. */
  cStringArray(texts: readonly string[]): number {
    const array = this.block((texts.length + 1) * 8);
    const cells = array.words;
    texts.forEach((text, i) => setU64(cells, i * 8, this.cString(text)));
    return array.address;
  }

  /** An 8-byte cell holding `value`, for APIs that take a pointer to it. */
  u64(value: number): number {
    const cell = this.block(8);
    setU64(cell.words, 0, value);
    return cell.address;
  }

  /** Frees every block. Safe once the child has its own copy of them, or has exec'd or died. */
  free(): void {
    for (const { address, size } of this.#mappings) libc().munmap(BigInt(address), BigInt(size));
    this.#mappings = [];
    this.#chunk = undefined;
    this.#used = 0;
  }
}

/**
 * A pointer's numeric address. Numbers, not BigInts: user-space addresses
 * on x86_64 fit in 47 bits, and FFI calls with number arguments take Deno's
 * fast path (measured here: 183 makecontext calls in 0.13 ms with numbers,
 * 1.6 ms with BigInts).
 */
export function address(pointer: Deno.PointerValue): number {
  return Number(Deno.UnsafePointer.value(pointer));
}

/**
 * 32-bit words over native bytes (16-byte aligned, as blocks are), for
 * 64-bit values at 8-byte-aligned offsets: indexed stores cost less than
 * DataView calls in code that runs once, cold (the chain's ~360 contexts).
 */
export function words(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
}

/**
 * Stores a 64-bit value (a safe integer; negative as two's complement),
 * little-endian as x86_64 is; `offset` in bytes, a multiple of 8.
 */
export function setU64(words: Uint32Array, offset: number, value: number): void {
  words[offset >> 2] = value >>> 0; // ToUint32: the low half, modulo 2^32
  words[(offset >> 2) + 1] = Math.floor(value / 2 ** 32);
}

/** Reads a 64-bit value stored by setU64 (or by C) as a number. */
export function getU64(words: Uint32Array, offset: number): number {
  return words[offset >> 2]! + (words[(offset >> 2) + 1]! | 0) * 2 ** 32;
}
