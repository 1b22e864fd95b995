/**
 * gcr's version: what `gcr --version` says (and engines log), and what its
 * registry client tells registries it is.
 *
 * @module
 */

/** gcr's own version. */
export const VERSION = "0.5.0";

/** The runtime spec version gcr implements, as `gcr --version` and `gcr state` report it. */
export const OCI_VERSION = "1.2.0";
