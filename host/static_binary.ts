/**
 * Host programs gcr puts into containers (busybox, an init) must be static:
 * the container's root filesystem may have no libc, or another one.
 *
 * @module
 */

/**
 * Whether an ELF file is statically linked: it has no PT_INTERP program
 * header. A dynamic busybox would need the host's libc inside the rootfs.
 */
export function isStaticElf(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || view.getUint32(0) !== 0x7f454c46 || bytes[4] !== 2) return false;
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const offset = phoff + i * phentsize;
    if (offset + 4 > bytes.length) return false;
    if (view.getUint32(offset, true) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

/** The first of `paths` that is a static ELF executable, or undefined. */
export function firstStaticBinary(paths: readonly string[]): string | undefined {
  for (const path of paths) {
    try {
      const file = Deno.openSync(path);
      const head = new Uint8Array(4096);
      const n = file.readSync(head) ?? 0;
      file.close();
      if (isStaticElf(head.subarray(0, n))) return path;
    } catch { /* not there */ }
  }
  return undefined;
}
