/**
 * img2rootfs: the Go original's command, without a Docker daemon.
 *
 *   img2rootfs -image REF -output DIR [--platform OS/ARCH[/VARIANT]] [--insecure]
 *              [--username U --password-stdin] [-q]
 *
 * Flags as Go's flag package reads them (`-image`, `--image`, `-image=REF`).
 * REF is a registry reference, docker-archive:PATH or oci:DIR[:TAG]. Errors:
 * one line `img2rootfs: …`, exit status 125.
 *
 * @module
 */
import { parsePullArgs, pullCommand } from "./pull.ts";
import { UsageError } from "./usage.ts";

const USAGE = `usage: img2rootfs -image REF -output DIR [options]

REF: a registry reference (ubuntu:20.04, localhost:5000/team/app:1.2), docker-archive:PATH
or oci:DIR[:TAG]. DIR is replaced atomically once every layer applied.

options:
  -platform OS/ARCH[/VARIANT]  from a multi-platform image (default: the host's)
  -insecure                    plain http (always allowed for localhost)
  -username USER               with -password-stdin: the password is read from stdin
  -password-stdin
  -q                           no progress`;

async function main(argv: readonly string[]): Promise<number> {
  if (argv.some((arg) => /^--?(h|help)$/.test(arg))) {
    console.log(USAGE);
    return 0;
  }
  try {
    return await pullCommand(parsePullArgs(argv, "img2rootfs"));
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`img2rootfs: ${error.message} (see: img2rootfs -help)`);
      return 125;
    }
    if (error instanceof Error && !(error instanceof RangeError)) {
      console.error(`img2rootfs: ${error.message}`);
      return 125;
    }
    throw error;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
