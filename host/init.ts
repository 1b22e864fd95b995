/**
 * The init `--init` runs as the container's pid 1: a static catatonit or
 * tini from the host (Debian/Ubuntu packages catatonit, tini), static
 * because it must run in any root filesystem, with or without a libc.
 *
 * @module
 */
import { firstStaticBinary } from "./static_binary.ts";

const CANDIDATES = ["/usr/bin/catatonit", "/usr/libexec/podman/catatonit", "/usr/bin/tini-static", "/sbin/tini-static"];

/** The first static init on this host, or undefined. */
export function findStaticInit(): string | undefined {
  return firstStaticBinary(CANDIDATES);
}

/** findStaticInit, or an error that says what to install. */
export function requireStaticInit(): string {
  const init = findStaticInit();
  if (!init) {
    throw new Error("--init needs a static init on this host: install catatonit or tini (it provides tini-static)");
  }
  return init;
}
