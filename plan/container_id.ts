/**
 * Container ids as the Go original makes them: the first 12 hex digits of a
 * SHA-256. Ours hashes the time and 16 random bytes, so two containers
 * started in the same millisecond still differ.
 *
 * @module
 */

/** A new container id, e.g. `dda93bff2ea0`. */
export async function newContainerId(): Promise<string> {
  const seed = new TextEncoder().encode(`${Date.now()} ${performance.now()} `);
  const input = new Uint8Array(seed.length + 16);
  input.set(seed);
  crypto.getRandomValues(input.subarray(seed.length));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return [...digest.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
