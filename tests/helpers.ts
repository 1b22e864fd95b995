/**
 * Small assertions for the integration tests (JSR's @std/assert is not
 * reachable here). Every failure message says what was expected, what was
 * seen, and, through `context`, which command produced it.
 *
 * @module
 */

/** A failed expectation. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? `${v}n` : v));
  } catch {
    return String(value);
  }
}

function withContext(message: string, context?: string): string {
  return context ? `${message}\n--- context ---\n${context}` : message;
}

/** Fails unless `condition` is truthy. */
export function assert(condition: unknown, message: string, context?: string): asserts condition {
  if (!condition) throw new AssertionError(withContext(message, context));
}

/** Deep equality through JSON (plain data: strings, numbers, arrays, objects). */
export function assertEquals<T>(actual: T, expected: T, message = "values differ", context?: string): void {
  const a = show(actual);
  const e = show(expected);
  if (a !== e) {
    throw new AssertionError(withContext(`${message}\n  expected: ${e}\n    actual: ${a}`, context));
  }
}

/** Fails when the two values are equal (through JSON). */
export function assertNotEquals<T>(actual: T, unexpected: T, message = "values should differ", context?: string): void {
  if (show(actual) === show(unexpected)) {
    throw new AssertionError(withContext(`${message}\n  both are: ${show(actual)}`, context));
  }
}

/** Fails unless `text` matches `pattern`; returns the match. */
export function assertMatch(text: string, pattern: RegExp, message = "text does not match", context?: string) {
  const match = text.match(pattern);
  if (!match) {
    throw new AssertionError(withContext(`${message}\n  pattern: ${pattern}\n     text: ${show(text)}`, context));
  }
  return match;
}

/** Fails when `text` matches `pattern`. */
export function assertNotMatch(text: string, pattern: RegExp, message = "text should not match", context?: string) {
  if (pattern.test(text)) {
    throw new AssertionError(withContext(`${message}\n  pattern: ${pattern}\n     text: ${show(text)}`, context));
  }
}

/** Fails unless `text` contains `part`. */
export function assertIncludes(text: string, part: string, message = "text lacks a part", context?: string): void {
  if (!text.includes(part)) {
    throw new AssertionError(withContext(`${message}\n  missing: ${show(part)}\n     text: ${show(text)}`, context));
  }
}

/** Fails when `text` contains `part`. */
export function assertNotIncludes(text: string, part: string, message = "text has a part", context?: string): void {
  if (text.includes(part)) {
    throw new AssertionError(withContext(`${message}\n  unwanted: ${show(part)}\n      text: ${show(text)}`, context));
  }
}

/** Lines of `text` without the trailing empty one. */
export function lines(text: string): string[] {
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  return all;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` every `every` ms until it returns a value other than
 * undefined, or throws with `what` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 5000,
  every = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new AssertionError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(every);
  }
}

/**
 * A process that waits for a line on stdin (the command must read one
 * first), moved into `cgroup` before `go()` sends it: limited from its
 * first instruction after that.
 */
export function startInCgroup(cgroup: { addProcess(pid: number): void }, program: string, args: string[]) {
  const child = new Deno.Command(program, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  cgroup.addProcess(child.pid);
  const go = async () => {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("go\n"));
    await writer.close();
  };
  return { child, go };
}
