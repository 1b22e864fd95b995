/**
 * Reads `linux.seccomp` into the profile gcr compiles (security/seccomp's
 * SeccompProfile), through that module's one reader, profileFromOci:
 * config.json is decoded once, and the filter is built from exactly what
 * was checked here.
 *
 * @module
 */
import type { SeccompProfile } from "../../security/seccomp/profile.ts";
import { profileFromOci } from "../../security/seccomp/oci.ts";
import { type Read, specErrorFrom } from "./fields.ts";

/** `linux.seccomp` as a profile; a refusal names its field, as every other section's does. */
export const asSeccomp: Read<SeccompProfile> = (value) => specErrorFrom(() => profileFromOci(value));
