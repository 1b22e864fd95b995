/**
 * Reference normalisation, checked against what Docker's
 * distribution/reference `ParseNormalizedNamed` gives for the same input.
 */
import { assert, assertDeepEquals, assertMatch, assertStrictEquals, assertThrows } from "../helpers.ts";
import {
  familiarName,
  formatReference,
  isLoopback,
  manifestReference,
  parseReference,
  registryEndpoint,
  validateDigest,
} from "../../image/reference.ts";

const D256 = "sha256:" + "a".repeat(64);
const D512 = "sha512:" + "b".repeat(128);

/** input → the full normalised form. */
const NORMALISED: [string, string][] = [
  ["ubuntu", "docker.io/library/ubuntu:latest"],
  ["ubuntu:20.04", "docker.io/library/ubuntu:20.04"],
  ["library/ubuntu", "docker.io/library/ubuntu:latest"],
  ["docker.io/ubuntu", "docker.io/library/ubuntu:latest"],
  ["index.docker.io/ubuntu", "docker.io/library/ubuntu:latest"],
  ["docker.io/library/ubuntu:22.04", "docker.io/library/ubuntu:22.04"],
  ["bitnami/redis", "docker.io/bitnami/redis:latest"],
  ["a/b/c", "docker.io/a/b/c:latest"],
  ["localhost/x", "localhost/x:latest"],
  ["localhost:5000/x", "localhost:5000/x:latest"],
  ["127.0.0.1:5000/team/app:1.2", "127.0.0.1:5000/team/app:1.2"],
  ["[::1]:5000/app", "[::1]:5000/app:latest"],
  ["ghcr.io/owner/repo:v1.0.0-rc.1", "ghcr.io/owner/repo:v1.0.0-rc.1"],
  ["Registry.Example.com/x", "Registry.Example.com/x:latest"],
  ["REGISTRY/x", "REGISTRY/x:latest"], // upper case: a registry, not a repository
  ["my-registry:443/a_b/c__d/e-f.g", "my-registry:443/a_b/c__d/e-f.g:latest"],
  [`ubuntu@${D256}`, `docker.io/library/ubuntu@${D256}`],
  [`ubuntu:20.04@${D256}`, `docker.io/library/ubuntu:20.04@${D256}`],
  [`localhost:5000/x@${D512}`, `localhost:5000/x@${D512}`],
  ["x:" + "a".repeat(128), "docker.io/library/x:" + "a".repeat(128)],
  ["a".repeat(64) + ":t", `docker.io/library/${"a".repeat(64)}:t`],
];

Deno.test("references normalise as Docker's", () => {
  for (const [input, expected] of NORMALISED) {
    assertStrictEquals(formatReference(parseReference(input)), expected, input);
  }
});

Deno.test("reference parts", () => {
  assertDeepEquals(parseReference("ubuntu"), { domain: "docker.io", repository: "library/ubuntu", tag: "latest" });
  assertDeepEquals(parseReference("127.0.0.1:5000/team/app:1.2"), {
    domain: "127.0.0.1:5000",
    repository: "team/app",
    tag: "1.2",
  });
  // A digest alone: no default tag; the digest is what is asked for.
  const pinned = parseReference(`localhost:5000/x@${D256}`);
  assertStrictEquals(pinned.tag, undefined);
  assertStrictEquals(manifestReference(pinned), D256);
  // Tag and digest: the digest wins.
  assertStrictEquals(manifestReference(parseReference(`ubuntu:20.04@${D256}`)), D256);
  assertStrictEquals(manifestReference(parseReference("ubuntu:20.04")), "20.04");
});

Deno.test("familiar names and endpoints", () => {
  assertStrictEquals(familiarName(parseReference("docker.io/library/ubuntu")), "ubuntu:latest");
  assertStrictEquals(familiarName(parseReference("bitnami/redis:7")), "bitnami/redis:7");
  assertStrictEquals(familiarName(parseReference("localhost:5000/x:t")), "localhost:5000/x:t");
  assertStrictEquals(registryEndpoint("docker.io"), "registry-1.docker.io");
  assertStrictEquals(registryEndpoint("localhost:5000"), "localhost:5000");
  assertStrictEquals(registryEndpoint("ghcr.io"), "ghcr.io");
});

Deno.test("loopback registries", () => {
  for (const domain of ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"]) {
    assert(isLoopback(domain), domain);
  }
  for (const domain of ["docker.io", "localhost.example.com:5000", "128.0.0.1", "[::2]:5000", "10.0.0.1:5000"]) {
    assert(!isLoopback(domain), domain);
  }
});

/** input → a fragment of the error message. */
const INVALID: [string, RegExp][] = [
  ["", /empty/],
  [" ubuntu", /white space/],
  ["Ubuntu", /must be lowercase/],
  ["docker.io/Library/ubuntu", /must be lowercase/],
  ["ubuntu:", /invalid tag/],
  ["ubuntu:-x", /invalid tag/],
  ["ubuntu:" + "a".repeat(129), /invalid tag/],
  ["ubuntu@sha256:abc", /expected 64 lower-case hex digits/],
  ["ubuntu@sha256:" + "A".repeat(64), /expected 64 lower-case hex digits/],
  ["ubuntu@md5:" + "a".repeat(32), /unsupported digest algorithm "md5"/],
  ["ubuntu@", /malformed digest/],
  ["a".repeat(64), /image id, not a repository name/],
  ["localhost:5000/", /repository name is empty/],
  [":tag", /repository name is empty/],
  ["a//b", /invalid repository name/],
  ["a/b/", /invalid repository name/],
  ["-a/b", /invalid registry|invalid repository name/],
  ["ex_ample.com/x", /invalid registry/],
  ["host:port/x", /invalid tag|invalid registry/],
  ["a__-b", /invalid repository name/],
  ["x/" + "a".repeat(260), /longer than 255/],
];

Deno.test("invalid references are refused with a reason", () => {
  for (const [input, reason] of INVALID) {
    assertThrows(() => parseReference(input), (error: Error) => {
      assertMatch(error.message, /^invalid image reference /, input);
      assertMatch(error.message, reason, input);
      return true;
    });
  }
});

Deno.test("digests", () => {
  assertStrictEquals(validateDigest(D256), D256);
  assertStrictEquals(validateDigest(D512), D512);
  assertThrows(() => validateDigest("sha256:../../etc/passwd"), /invalid digest/);
  assertThrows(() => validateDigest("sha256"), /invalid digest/);
  assertThrows(() => validateDigest("sha384:" + "a".repeat(96)), /unsupported digest algorithm/);
});
