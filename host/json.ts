/**
 * JSON as gcr reads it from files (config.json, seccomp profiles, Docker's
 * config.json for credentials): an object is a plain object, never null or
 * an array.
 *
 * @module
 */

/** Whether `value` is a JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A JSON value at its zero value asks for nothing: generators written in Go
 * emit `"blockIO": {"weight": 0}` or `"mountLabel": ""` for "unset", and
 * runc reads them that way. null, absent, "", false, 0, [] and objects of
 * such values.
 */
export function isZeroValue(value: unknown): boolean {
  if (value === null || value === undefined || value === "" || value === false || value === 0) return true;
  if (Array.isArray(value)) return value.length === 0;
  return isObject(value) && Object.values(value).every(isZeroValue);
}
