/**
 * Names as the kernel takes them: bytes, not UTF-8 text. A byte string holds
 * one char (0-255) per byte, so any name a layer or a path holds survives
 * the round trip into a C string unchanged; only messages decode it.
 *
 * @module
 */

/** A name exactly as its bytes: each char code is one byte (0-255). */
export type ByteString = string;

/** A byte string made from bytes, one char per byte. */
export function byteString(bytes: Uint8Array): ByteString {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** The bytes of a byte string. */
export function bytesOf(text: ByteString): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** A byte string for people: decoded as UTF-8 (lossy) and quoted. */
export function displayName(name: ByteString): string {
  return JSON.stringify(new TextDecoder().decode(bytesOf(name)));
}
