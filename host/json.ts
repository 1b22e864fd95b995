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
