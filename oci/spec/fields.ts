/**
 * The reader every section of config.json is read with: {@link Fields}
 * checks an object's keys against the fields the spec gives it (its
 * {@link Shape}; others are ignored), and the {@link Read} helpers (asString, integer, list,
 * oneOf, …) check one value each, the path of each value going with it so
 * that every failure is a {@link SpecError} naming its field
 * (`mounts[2].options[0]`).
 *
 * Its own module because it knows nothing of the runtime spec: the section
 * modules beside it say which fields there are and what they mean, this one
 * how a field is found, checked and named in an error, the same way for all
 * of them.
 *
 * @module
 */
import { isObject, isZeroValue } from "../../host/json.ts";

/** A config.json that does not describe a container gcr can run as asked. */
export class SpecError extends Error {
  override name = "SpecError";
  /** The field at fault, as a path (`linux.resources.memory.kernel`, `mounts[2].options[0]`); "" for the file itself. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

export function fail(field: string, problem: string): never {
  throw new SpecError(field, `config.json: ${field} ${problem}`);
}

const child = (path: string, key: string) => (path ? `${path}.${key}` : key);
export const item = (path: string, index: number) => `${path}[${index}]`;

export type Read<T> = (value: unknown, path: string) => T;

/**
 * How an object treats each field the runtime spec gives it. `read`: gcr
 * supports it. `refuse`: present at all, it is refused. `refuse-unless-empty`:
 * accepted only at its zero value (host/json.ts's isZeroValue). A field the
 * shape does not name is ignored: the spec says runtimes MUST NOT fail on
 * unknown properties.
 */
export type Shape = Readonly<Record<string, "read" | "refuse" | "refuse-unless-empty">>;

/** An object's fields after checking every key against its shape; `null` counts as absent, as Go reads it. */
export class Fields {
  readonly #values = new Map<string, unknown>();

  constructor(value: unknown, readonly path: string, shape: Shape) {
    if (!isObject(value)) fail(path, "must be an object");
    for (const [key, field] of Object.entries(value)) {
      const at = child(path, key);
      // hasOwn: a key such as "constructor" must not find Object.prototype's.
      const policy = Object.hasOwn(shape, key) ? shape[key] : undefined;
      if (policy === undefined) continue;
      if (policy === "refuse" && field !== null) fail(at, "is not supported by gcr");
      if (policy === "refuse-unless-empty" && !isZeroValue(field)) fail(at, "is not supported by gcr");
      if (policy === "read" && field !== null) this.#values.set(key, field);
    }
  }

  at(key: string): string {
    return child(this.path, key);
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  required<T>(key: string, read: Read<T>): T {
    if (!this.#values.has(key)) fail(this.at(key), "is required");
    return read(this.#values.get(key), this.at(key));
  }

  optional<T>(key: string, read: Read<T>): T | undefined {
    return this.#values.has(key) ? read(this.#values.get(key), this.at(key)) : undefined;
  }

  or<T>(key: string, read: Read<T>, fallback: T): T {
    return this.optional(key, read) ?? fallback;
  }
}

export const asString: Read<string> = (value, path) => {
  if (typeof value !== "string") fail(path, "must be a string");
  return value;
};

/** A string that becomes a C string: a NUL inside would cut it short. */
export const asCString: Read<string> = (value, path) => {
  const text = asString(value, path);
  if (text.includes("\0")) fail(path, "must not contain a NUL character");
  return text;
};

export const asBoolean: Read<boolean> = (value, path) => {
  if (typeof value !== "boolean") fail(path, "must be true or false");
  return value;
};

/** JSON numbers are doubles: past 2^53 a config's integer may already have been rounded by JSON.parse. */
export function integer(min: number, max: number): Read<number> {
  return (value, path) => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      fail(path, `must be an integer from ${min} to ${max}`);
    }
    return value;
  };
}

export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
export const asUint32 = integer(0, 0xffff_ffff);
export const asInt64 = integer(-MAX_SAFE, MAX_SAFE);
export const asUint64 = integer(0, MAX_SAFE);

export function list<T>(read: Read<T>): Read<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) fail(path, "must be an array");
    return value.map((entry, index) => read(entry, item(path, index)));
  };
}

export const asAbsolutePath: Read<string> = (value, path) => {
  const text = asCString(value, path);
  if (!text.startsWith("/")) fail(path, `must be an absolute path, not ${JSON.stringify(text)}`);
  return text;
};

export const asStringMap: Read<Record<string, string>> = (value, path) => {
  if (!isObject(value)) fail(path, "must be an object of strings");
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string") fail(child(path, key), "must be a string");
    Object.defineProperty(out, key, { value: entry, enumerable: true, writable: true, configurable: true });
  }
  return out;
};

export function oneOf<T extends string>(names: readonly T[]): Read<T> {
  return (value, path) => {
    if (typeof value !== "string" || !(names as readonly string[]).includes(value)) {
      fail(path, `must be one of ${names.join(", ")}, not ${JSON.stringify(value)}`);
    }
    return value as T;
  };
}

/** `{key: value}` when value is defined, else `{}`: spread into a result so absent fields stay absent. */
export function optionalEntry<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * Runs a reader of another module whose errors start with the field at fault
 * (`linux.resources.memory.swap: …`, `linux.seccomp.flags[0]: …`), and
 * turns them into SpecErrors naming that field, as this reader's own are.
 */
export function specErrorFrom<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof SpecError || !(error instanceof Error)) throw error;
    const field = /^([\w.[\]-]+): /.exec(error.message)?.[1] ?? "";
    throw new SpecError(field, `config.json: ${error.message}`);
  }
}
