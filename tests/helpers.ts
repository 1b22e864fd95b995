/**
 * The assertions of every test (JSR's @std/assert is not reachable here).
 * Every failure message says what was expected, what was seen, and, through
 * `context`, which command produced it.
 *
 * Two kinds of equality: `assertEquals` compares plain data through JSON
 * (what most tests compare: command output, parsed files); the strict ones
 * compare as node's `assert/strict` does (`Object.is`, `isDeepStrictEqual`),
 * for values JSON would blur (undefined and null, typed arrays, classes).
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import { sleep } from "../host/time.ts";

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
export function assert(condition: unknown, message = "assertion failed", context?: string): asserts condition {
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

/** A value as the console shows it: for the strict comparisons, where JSON would hide the difference. */
function inspect(value: unknown): string {
  return Deno.inspect(value, { depth: 6, iterableLimit: 40, strAbbreviateSize: 2000 });
}

/** Fails unless `actual` is `expected` (`Object.is`, as node's strict `assert.equal`). */
export function assertStrictEquals<T>(
  actual: T,
  expected: T,
  message = "values are not the same",
  context?: string,
): void {
  if (!Object.is(actual, expected)) {
    throw new AssertionError(
      withContext(`${message}\n  expected: ${inspect(expected)}\n    actual: ${inspect(actual)}`, context),
    );
  }
}

/** Fails when `actual` is `unexpected` (`Object.is`, as node's strict `assert.notEqual`). */
export function assertNotStrictEquals<T>(
  actual: T,
  unexpected: T,
  message = "values should not be the same",
  context?: string,
): void {
  if (Object.is(actual, unexpected)) {
    throw new AssertionError(withContext(`${message}\n  both are: ${inspect(actual)}`, context));
  }
}

/**
 * Fails unless the two are deeply equal as node's strict `assert.deepEqual`
 * has it (`isDeepStrictEqual`: same prototypes, `Object.is` for primitives,
 * typed arrays, maps and sets by content).
 */
export function assertDeepEquals<T>(
  actual: T,
  expected: T,
  message = "values are not deeply equal",
  context?: string,
): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(
      withContext(`${message}\n  expected: ${inspect(expected)}\n    actual: ${inspect(actual)}`, context),
    );
  }
}

/** A class of errors (abstract ones too). */
type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/**
 * What an error must be, as node's assert.throws has it: a pattern that
 * matches its message or `String(error)` (name and message), a class it is
 * an instance of, or a check that returns true (its own assertions fail
 * with their own messages).
 */
type ExpectedError = RegExp | ErrorClass<Error> | ((error: Error) => boolean);

function describeExpected(expected: ExpectedError | undefined): string {
  if (expected === undefined) return "an error";
  if (expected instanceof RegExp) return `an error matching ${expected}`;
  if (isErrorClass(expected)) return `a ${expected.name}`;
  return `an error passing ${expected.name || "the check"}`;
}

function isErrorClass(expected: ErrorClass<Error> | ((error: Error) => boolean)): expected is ErrorClass<Error> {
  return expected === Error || Object.prototype.isPrototypeOf.call(Error, expected);
}

/** An AssertionError saying `why`, under the caller's `message` when there is one. */
function failure(message: string | undefined, why: string): AssertionError {
  return new AssertionError(message ? `${message}\n  ${why}` : why);
}

/** Fails unless `error` is an Error as `expected` describes; returns it. */
function checkError(error: unknown, expected: ExpectedError | undefined, message: string | undefined): Error {
  const fail = (why: string) => failure(message, why);
  if (!(error instanceof Error)) {
    throw fail(`expected ${describeExpected(expected)}, but a non-Error was thrown: ${inspect(error)}`);
  }
  if (expected === undefined) return error;
  if (expected instanceof RegExp) {
    if (error.message.search(expected) !== -1 || String(error).search(expected) !== -1) return error;
    throw fail(`expected ${describeExpected(expected)}, got: ${show(String(error))}`);
  }
  if (expected.prototype !== undefined && error instanceof expected) return error;
  if (isErrorClass(expected)) throw fail(`expected ${describeExpected(expected)}, got: ${inspect(error)}`);
  const passed = (expected as (error: Error) => boolean)(error);
  if (passed !== true) {
    throw fail(
      `expected ${describeExpected(expected)}, the check returned ${inspect(passed)} for: ${show(String(error))}`,
    );
  }
  return error;
}

/**
 * Calls `fn`, which must throw an Error as `expected` describes (see
 * ExpectedError; any Error when undefined); returns it for a closer look.
 * `message` says which expectation failed.
 */
export function assertThrows(
  fn: () => unknown,
  expected?: RegExp | ((error: Error) => boolean),
  message?: string,
): Error;
export function assertThrows<E extends Error>(fn: () => unknown, expected: ErrorClass<E>, message?: string): E;
export function assertThrows(fn: () => unknown, expected?: ExpectedError, message?: string): Error {
  try {
    fn();
  } catch (error) {
    return checkError(error, expected, message);
  }
  throw failure(message, `expected ${describeExpected(expected)}, but nothing was thrown`);
}

/**
 * Awaits `promise` (or what `promise()` returns; a synchronous throw counts
 * as a rejection), which must reject with an Error as `expected` describes;
 * returns it for a closer look.
 */
export function assertRejects(
  promise: Promise<unknown> | (() => Promise<unknown>),
  expected?: RegExp | ((error: Error) => boolean),
  message?: string,
): Promise<Error>;
export function assertRejects<E extends Error>(
  promise: Promise<unknown> | (() => Promise<unknown>),
  expected: ErrorClass<E>,
  message?: string,
): Promise<E>;
export async function assertRejects(
  promise: Promise<unknown> | (() => Promise<unknown>),
  expected?: ExpectedError,
  message?: string,
): Promise<Error> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    return checkError(error, expected, message);
  }
  throw failure(message, `expected a rejection with ${describeExpected(expected)}, but it resolved`);
}

/** Lines of `text` without the trailing empty one. */
export function lines(text: string): string[] {
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  return all;
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
