/**
 * Reads `linux.resources` into the limits gcr's cgroup code takes
 * (cgroup/limits.ts's ResourceLimits), through that module's one reader,
 * resourcesFromOci: config.json is decoded once, and what `gcr create` makes
 * its cgroup from is exactly what was checked here.
 *
 * @module
 */
import { type ResourceLimits, resourcesFromOci } from "../../cgroup/limits.ts";
import { type Read, specErrorFrom } from "./fields.ts";

/** `linux.resources` as limits; a refusal names its field, as every other section's does. */
export const asResources: Read<ResourceLimits> = (value) => specErrorFrom(() => resourcesFromOci(value));
