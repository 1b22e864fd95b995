/**
 * Image references as Docker reads them: `ubuntu` is
 * `docker.io/library/ubuntu:latest`, `localhost:5000/x` names a registry on
 * localhost, `name@sha256:…` pins a digest.
 *
 * The grammar is distribution/reference's (`reference/regexp.go`), and the
 * normalisation its `ParseNormalizedNamed`: the first path component is a
 * registry only when it contains `.` or `:`, is `localhost`, or has upper-case
 * letters (which a repository path may not).
 *
 * ```ts
 * const ref = parseReference("ubuntu");
 * ref.toString(); // "docker.io/library/ubuntu:latest"
 * registryEndpoint(ref.domain); // "registry-1.docker.io"
 * ```
 *
 * @module
 */

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** The registry as named in the reference: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** The repository path inside the registry: `library/ubuntu`, `team/app`. */
  readonly repository: string;
  /** The tag: given, or `latest` when neither tag nor digest was given. */
  readonly tag?: string;
  /** The digest, `sha256:<64 hex>` or `sha512:<128 hex>`; it wins over the tag when both are given. */
  readonly digest?: string;
}

export const DEFAULT_DOMAIN = "docker.io";
export const DEFAULT_TAG = "latest";
/** Where `docker.io` is actually served. */
const DOCKER_HUB_ENDPOINT = "registry-1.docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPOSITORY_PREFIX = "library/";
const NAME_TOTAL_LENGTH_MAX = 255;

// distribution/reference/regexp.go, spelled out.
const ALPHA_NUMERIC = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALPHA_NUMERIC}(?:${SEPARATOR}${ALPHA_NUMERIC})*`;
const DOMAIN_NAME_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const IPV6_ADDRESS = "\\[(?:[a-fA-F0-9:]+)\\]";
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
const HOST = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;

const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_SYNTAX_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX64_RE = /^[a-f0-9]{64}$/;

/** Digest algorithms gcr can verify, with the length of their hex encoding. */
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

/**
 * Checks a content digest as gcr accepts it (`sha256:` + 64 lower-case hex,
 * or `sha512:` + 128) and returns it; anything else is an error. Digests
 * become file names in the blob cache, so this check is also what keeps a
 * hostile manifest from naming a path.
 */
export function validateDigest(digest: string): string {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (colon < 0 || !DIGEST_SYNTAX_RE.test(digest)) throw new Error(`invalid digest ${JSON.stringify(digest)}`);
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) {
    throw new Error(
      `unsupported digest algorithm ${JSON.stringify(algorithm)} in ${digest} (supported: sha256, sha512)`,
    );
  }
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) {
    throw new Error(`invalid ${algorithm} digest ${JSON.stringify(digest)}: expected ${length} lower-case hex digits`);
  }
  return digest;
}

function invalid(input: string, why: string): Error {
  return new Error(`invalid image reference ${JSON.stringify(input)}: ${why}`);
}

/** Splits `name` into registry and path as `splitDockerDomain` does. */
function splitDomain(name: string): [domain: string, path: string] {
  const slash = name.indexOf("/");
  const first = name.slice(0, slash);
  if (
    slash < 0 ||
    (!first.includes(".") && !first.includes(":") && first !== "localhost" && first.toLowerCase() === first)
  ) {
    return [DEFAULT_DOMAIN, name];
  }
  return [first, name.slice(slash + 1)];
}

/**
 * Parses and normalises a reference: `[domain/]path[:tag][@digest]`. Throws
 * an error that names the reference and what is wrong with it.
 */
export function parseReference(input: string): ImageReference {
  if (input === "") throw invalid(input, "it is empty");
  if (input.trim() !== input || /\s/.test(input)) throw invalid(input, "it contains white space");

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_SYNTAX_RE.test(digest)) throw invalid(input, `malformed digest ${JSON.stringify(digest)}`);
    try {
      validateDigest(digest);
    } catch (error) {
      throw invalid(input, (error as Error).message);
    }
  }

  // A tag follows the last ':' that comes after the last '/'; an earlier ':' is a port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(input, `invalid tag ${JSON.stringify(tag)}`);
  }

  if (rest === "") throw invalid(input, "the repository name is empty");
  if (HEX64_RE.test(rest) && digest === undefined && tag === undefined) {
    throw invalid(input, "a 64-character hexadecimal string is an image id, not a repository name");
  }
  let [domain, path] = splitDomain(rest);
  if (!DOMAIN_RE.test(domain)) throw invalid(input, `invalid registry ${JSON.stringify(domain)}`);
  if (path === "") throw invalid(input, "the repository name is empty");
  if (path.toLowerCase() !== path) throw invalid(input, `repository name ${JSON.stringify(path)} must be lowercase`);
  if (!PATH_RE.test(path)) throw invalid(input, `invalid repository name ${JSON.stringify(path)}`);
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes("/")) path = OFFICIAL_REPOSITORY_PREFIX + path;
  if (domain.length + 1 + path.length > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(input, `the repository name is longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }

  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return {
    domain,
    repository: path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** The full form: `docker.io/library/ubuntu:latest`, `host/x:t@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.domain}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ""}${
    ref.digest !== undefined ? `@${ref.digest}` : ""
  }`;
}

/** The short form Docker shows: `ubuntu:latest`, `team/app:1.2`, `localhost:5000/x:t`. */
export function familiarName(ref: ImageReference): string {
  let name = `${ref.domain}/${ref.repository}`;
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.repository.startsWith(OFFICIAL_REPOSITORY_PREFIX)
      ? ref.repository.slice(OFFICIAL_REPOSITORY_PREFIX.length)
      : ref.repository;
  }
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** What to ask the registry's manifest endpoint for: the digest when there is one, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** The host (and port) that serves `domain`: `docker.io` is served at `registry-1.docker.io`. */
export function registryEndpoint(domain: string): string {
  return domain === DEFAULT_DOMAIN ? DOCKER_HUB_ENDPOINT : domain;
}

/** The host part of `host[:port]` or `[v6]:port`, without brackets. */
export function hostOf(domain: string): string {
  if (domain.startsWith("[")) return domain.slice(1, domain.indexOf("]"));
  const colon = domain.lastIndexOf(":");
  return colon >= 0 ? domain.slice(0, colon) : domain;
}

/** Whether a registry is on this machine's loopback: `localhost`, 127.0.0.0/8 or `::1`. */
export function isLoopback(domain: string): boolean {
  const host = hostOf(domain).toLowerCase();
  return host === "localhost" || host.endsWith(".localhost") || /^127(?:\.\d{1,3}){3}$/.test(host) ||
    host === "::1" || host === "0:0:0:0:0:0:0:1";
}
