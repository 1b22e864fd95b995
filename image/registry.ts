/**
 * The registry client of `gcr pull`: the OCI distribution API as registries
 * serve it (Docker Hub included), without a Docker daemon.
 *
 * Every request goes through one path: auth (see `auth.ts`), redirects
 * followed by hand so that Authorization reaches only the registry's own
 * origin, and retries with exponential back-off for network errors, 429 and
 * 5xx, honouring `Retry-After`. Manifests are read with a size cap and
 * checked against the digest asked for and `Docker-Content-Digest`. Blobs are
 * streamed into the blob cache, hashed as they arrive, resumed with `Range`
 * after a cut, and published only when verified.
 *
 * ```ts
 * const image = await pullImage("alpine", { cacheDir: ".cache/gcr", progress: createProgress() });
 * for (const layer of image.layers) console.log(layer.digest, layer.path);
 * ```
 *
 * @module
 */
import { VERSION } from "../output/version.ts";
import { Authenticator, type Credentials, credentialsFromDockerConfig, loadDockerConfig } from "./auth.ts";
import { BlobCache, BlobVerificationError, digestAlgorithm, digestOf, type Ingest } from "./blob_cache.ts";
import { BlobFeed } from "./blob_feed.ts";
import {
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  MANIFEST_ACCEPT,
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  type Platform,
  platformScore,
  selectManifest,
} from "./manifest.ts";
import { createProgress, type PullProgress, shortDigest } from "./progress.ts";
import {
  formatReference,
  type ImageReference,
  isLoopback,
  manifestReference,
  parseReference,
  registryEndpoint,
  validateDigest,
} from "./reference.ts";
import { sleep } from "../host/time.ts";

/** How often, and how patiently, failed requests are repeated. */
export interface RetryPolicy {
  /** Attempts per request (and per blob without progress), the first included. */
  readonly attempts: number;
  /** The first back-off; each further one doubles, with jitter. */
  readonly baseDelayMs: number;
  /** No single wait is longer, whatever `Retry-After` asks for. */
  readonly maxDelayMs: number;
  /** A blob transfer that receives nothing for this long is cut and resumed. */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, idleTimeoutMs: 60_000 };

/** A registry answered with an error status; `code` is the first error code of its JSON body. */
export class RegistryError extends Error {
  override name = "RegistryError";
  readonly status: number;
  readonly code: string | undefined;

  constructor(message: string, status: number, code?: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Builds a RegistryError from a failed response, with the registry's own error messages. */
async function registryError(response: Response, what: string): Promise<RegistryError> {
  let detail = "";
  let code: string | undefined;
  try {
    const text = (await response.text()).slice(0, 4096);
    try {
      const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      const errors = Array.isArray(body.errors) ? body.errors : [];
      code = errors[0]?.code;
      detail = errors.map((e) => `${e.message ?? "error"}${e.code ? ` (${e.code})` : ""}`).join("; ");
    } catch {
      detail = text.trim().split("\n")[0]?.slice(0, 200) ?? "";
    }
  } catch {
    // the body is gone; the status says enough
  }
  const hint = response.status === 401 || response.status === 403
    ? " (private image? pass --username and --password-stdin, or run docker login)"
    : "";
  return new RegistryError(
    `${what}: ${response.status} ${response.statusText}${detail ? `: ${detail}` : ""}${hint}`,
    response.status,
    code,
  );
}

/** The wait a `Retry-After` header asks for, in ms: delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

/** The back-off before attempt `attempt + 1`: base·2^attempt with ±25 % jitter, capped. */
export function backoffDelay(attempt: number, policy: RetryPolicy): number {
  const exponential = policy.baseDelayMs * 2 ** attempt;
  return Math.min(policy.maxDelayMs, exponential * (0.75 + Math.random() * 0.5));
}

function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505);
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const USER_AGENT = `gcr/${VERSION} (+https://github.com/opencontainers/distribution-spec)`;

/** Reads a body into memory, refusing more than `limit` bytes while reading. */
async function readCapped(response: Response, limit: number, what: string): Promise<Uint8Array> {
  const length = response.headers.get("content-length");
  if (length !== null && Number(length) > limit) {
    await response.body?.cancel();
    throw new Error(`${what} is ${length} bytes, more than the limit of ${limit}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body !== null) {
    for await (const chunk of response.body) {
      total += chunk.length;
      if (total > limit) {
        throw new Error(`${what} is more than the limit of ${limit} bytes`);
      }
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** A manifest as fetched (or read from the cache), with its digest and parsed form. */
export interface FetchedManifest {
  readonly digest: string;
  readonly bytes: Uint8Array;
  readonly manifest: ImageIndex | ImageManifest;
  readonly fromCache: boolean;
}

/** Called when a request is retried: what failed, and how long the wait is. */
export type RetryListener = (reason: string, delayMs: number) => void;

export interface RegistryClientOptions {
  /** Plain http (for any registry, not only loopback ones). */
  readonly insecure?: boolean;
  readonly credentials?: Credentials | undefined;
  readonly retry?: Partial<RetryPolicy>;
  readonly signal?: AbortSignal;
}

/** Talks to one registry. Holds its auth state, so reuse it for every request of a pull. */
export class RegistryClient {
  /** The registry as references name it: `docker.io`, `localhost:5000`. */
  readonly domain: string;
  /** Where it is reached: `https://registry-1.docker.io`, `http://localhost:5000`. */
  readonly baseUrl: URL;
  readonly auth: Authenticator;
  readonly retry: RetryPolicy;
  readonly #insecure: boolean;
  readonly #signal: AbortSignal | undefined;

  constructor(domain: string, options: RegistryClientOptions = {}) {
    this.domain = domain;
    this.#insecure = options.insecure ?? false;
    // Plain http for --insecure, and for registries on loopback as Docker allows by default.
    const scheme = this.#insecure || isLoopback(domain) ? "http" : "https";
    this.baseUrl = new URL(`${scheme}://${registryEndpoint(domain)}`);
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#signal = options.signal;
    this.auth = new Authenticator({
      domain,
      credentials: options.credentials,
      insecure: this.#insecure,
      send: (url, init) =>
        this.#withRetries(
          `token request to ${url.host}`,
          () => this.#send(url, { ...init, ...(this.#signal ? { signal: this.#signal } : {}) }, false),
        ),
    });
  }

  /** Whether a redirect may lead to `url`: https always; http only when insecure or on loopback. */
  #allowed(url: URL): boolean {
    if (url.protocol === "https:") return true;
    return url.protocol === "http:" && (this.#insecure || isLoopback(url.host));
  }

  /**
   * One request, redirects followed by hand. `authorization` goes only to the
   * registry's own origin: a redirect to a storage host (S3, a CDN, another
   * port) gets none, whatever comes back later.
   */
  async #send(url: URL, init: RequestInit, follow: boolean, authorization?: string): Promise<Response> {
    let current = url;
    for (let hop = 0;; hop++) {
      const headers = new Headers(init.headers);
      headers.set("user-agent", USER_AGENT);
      if (authorization !== undefined && current.origin === this.baseUrl.origin) {
        headers.set("authorization", authorization);
      }
      const response = await fetch(current, { ...init, headers, redirect: "manual" });
      if (!follow || !REDIRECT_STATUSES.has(response.status)) return response;
      await response.body?.cancel();
      const location = response.headers.get("location");
      if (location === null) throw new Error(`${current.host} redirected (${response.status}) without a Location`);
      if (hop + 1 >= MAX_REDIRECTS) throw new Error(`too many redirects from ${url.href}`);
      const next = new URL(location, current);
      if (!this.#allowed(next)) {
        throw new Error(`refusing a redirect from ${current.host} to ${next.href}: plain http needs --insecure`);
      }
      current = next;
    }
  }

  /** Runs `attempt` until it gives a response that is not 429/5xx, or attempts run out; network errors count too. */
  async #withRetries(what: string, attempt: () => Promise<Response>, onRetry?: RetryListener): Promise<Response> {
    for (let n = 0;; n++) {
      let reason: string;
      let delay: number;
      try {
        const response = await attempt();
        if (!isRetryableStatus(response.status) || n + 1 >= this.retry.attempts) return response;
        const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
        delay = Math.min(this.retry.maxDelayMs, retryAfter ?? backoffDelay(n, this.retry));
        reason = `${response.status} ${response.statusText}`;
        await response.body?.cancel();
      } catch (error) {
        // A name that does not resolve will not resolve a second later: say so at once.
        const unresolved = error instanceof TypeError && /dns error/.test(String(error.cause));
        if (unresolved) throw new Error(`${what} failed: cannot resolve the registry's host name`, { cause: error });
        if (this.#signal?.aborted || n + 1 >= this.retry.attempts || !(error instanceof TypeError)) {
          if (error instanceof TypeError) {
            throw new Error(`${what} failed after ${n + 1} attempts: ${error.message}`, { cause: error });
          }
          throw error;
        }
        reason = error.message;
        delay = backoffDelay(n, this.retry);
      }
      onRetry?.(reason, delay);
      await sleep(delay, this.#signal);
    }
  }

  /**
   * GET (or HEAD) `/v2/<repository><path>` with pull access: auth as the
   * registry asks (one repeat after a 401), redirects, retries. The caller
   * reads or cancels the body.
   */
  request(
    repository: string,
    path: string,
    init: RequestInit = {},
    onRetry?: RetryListener,
  ): Promise<Response> {
    const url = new URL(`/v2/${repository}${path}`, this.baseUrl);
    const scope = `repository:${repository}:pull`;
    const signal = init.signal ?? this.#signal;
    return this.#withRetries(`request to ${url.href}`, async () => {
      for (let authTry = 0;; authTry++) {
        const authorization = await this.auth.authorization(scope);
        const response = await this.#send(url, { ...init, ...(signal ? { signal } : {}) }, true, authorization);
        if (response.status !== 401 || authTry > 0) return response;
        const again = await this.auth.answer(response, scope, authorization);
        if (!again) return response;
        await response.body?.cancel();
      }
    }, onRetry);
  }

  /**
   * Fetches a manifest by tag or digest. Checks, before parsing: the size
   * cap (while reading), the digest asked for, `Docker-Content-Digest`, and
   * the size and media type of the descriptor that pointed here. With a
   * cache, manifests asked for by digest come from it and fetched ones go
   * into it.
   */
  async fetchManifest(
    repository: string,
    reference: string,
    options: { cache?: BlobCache; descriptor?: Descriptor } = {},
  ): Promise<FetchedManifest> {
    const byDigest = reference.includes(":") ? validateDigest(reference) : undefined;
    const name = `${this.domain}/${repository}${byDigest ? "@" : ":"}${reference}`;
    const { cache, descriptor } = options;
    if (byDigest !== undefined && cache !== undefined && await cache.has(byDigest, descriptor?.size)) {
      const bytes = await cache.read(byDigest, MAX_MANIFEST_BYTES);
      if (digestOf(bytes, digestAlgorithm(byDigest)) === byDigest) {
        return { digest: byDigest, bytes, manifest: parseManifest(bytes, descriptor?.mediaType), fromCache: true };
      }
      await Deno.remove(cache.path(byDigest)); // damaged on disk: fetch it again
    }
    const response = await this.request(repository, `/manifests/${reference}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (!response.ok) {
      throw await registryError(response, response.status === 404 ? `${name} not found` : `cannot get ${name}`);
    }
    const bytes = await readCapped(response, MAX_MANIFEST_BYTES, `the manifest of ${name}`);
    const header = response.headers.get("docker-content-digest");
    if (byDigest !== undefined) {
      const actual = digestOf(bytes, digestAlgorithm(byDigest));
      if (actual !== byDigest) {
        throw new Error(`digest mismatch for ${name}: the registry sent a manifest with digest ${actual}`);
      }
    }
    if (header !== null) {
      let claimed: string;
      try {
        claimed = validateDigest(header.trim());
      } catch (error) {
        throw new Error(`${name}: bad Docker-Content-Digest header: ${(error as Error).message}`);
      }
      const actual = digestOf(bytes, digestAlgorithm(claimed));
      if (actual !== claimed) {
        throw new Error(`digest mismatch for ${name}: Docker-Content-Digest says ${claimed}, the body is ${actual}`);
      }
    }
    const digest = byDigest ?? (header !== null ? header.trim() : digestOf(bytes));
    if (descriptor !== undefined && bytes.length !== descriptor.size) {
      throw new Error(`${name} is ${bytes.length} bytes, the index said ${descriptor.size}`);
    }
    const manifest = parseManifest(bytes, response.headers.get("content-type") ?? descriptor?.mediaType);
    if (descriptor !== undefined && manifest.mediaType !== descriptor.mediaType) {
      throw new Error(`${name} is a ${manifest.mediaType}, the index said ${descriptor.mediaType}`);
    }
    if (cache !== undefined) await cache.put(digest, bytes);
    return { digest, bytes, manifest, fromCache: false };
  }

  /**
   * Downloads a blob into `cache` unless it is there already; returns its
   * path and whether anything was downloaded. Bytes are verified as they
   * stream; a cut transfer resumes with `Range` from what was written (also
   * a partial file left by an earlier pull); a blob that fails verification
   * never enters the cache. A `feed` is given the bytes as they land, and
   * the verdict before the blob is fsynced.
   */
  async downloadBlob(
    repository: string,
    descriptor: Descriptor,
    cache: BlobCache,
    report: (status: string, current?: number, total?: number) => void = () => {},
    feed?: BlobFeed,
  ): Promise<{ path: string; downloaded: boolean }> {
    const { digest, size } = descriptor;
    const found = async () => {
      const path = cache.path(digest);
      await feed?.cached(path);
      return { path, downloaded: false };
    };
    try {
      if (await cache.has(digest, size)) return await found();
      let restarted = false;
      for (;;) {
        const ingest = await cache.ingest(digest, size);
        if (ingest === undefined) return await found();
        try {
          await feed?.follow(ingest);
          await this.#transfer(repository, ingest, report);
          report("Verifying Checksum", ingest.offset, size);
          await ingest.verify();
          feed?.verified();
          const path = await ingest.commit();
          report("Download complete", size, size);
          return { path, downloaded: true };
        } catch (error) {
          // A partial file from an earlier attempt may be what is wrong: one fresh start, then give up.
          if (error instanceof BlobVerificationError && ingest.resumedFrom > 0 && !restarted) {
            restarted = true;
            await ingest.discard();
            continue;
          }
          if (error instanceof BlobVerificationError) await ingest.discard();
          throw error;
        } finally {
          ingest.close();
        }
      }
    } catch (error) {
      feed?.fail(error);
      throw error;
    }
  }

  /** Fills `ingest` up to its size, resuming after cuts; each failure without progress counts as an attempt. */
  async #transfer(
    repository: string,
    ingest: Ingest,
    report: (status: string, current?: number, total?: number) => void,
  ): Promise<void> {
    const { digest, size } = ingest;
    if (size === 0) return; // nothing to fetch; commit checks the empty digest
    let failures = 0;
    while (ingest.offset < size) {
      const start = ingest.offset;
      const headers: Record<string, string> = { "accept-encoding": "identity" };
      if (start > 0) headers.range = `bytes=${start}-`;
      const idle = new AbortController();
      const signal = this.#signal ? AbortSignal.any([this.#signal, idle.signal]) : idle.signal;
      let timer = setTimeout(() => idle.abort(new Error("no data")), this.retry.idleTimeoutMs);
      const touch = () => {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(new Error("no data")), this.retry.idleTimeoutMs);
      };
      let problem: string;
      try {
        const response = await this.request(repository, `/blobs/${digest}`, { headers, signal }, (reason, delay) => {
          touch();
          report(`Retrying in ${Math.ceil(delay / 1000)}s: ${reason}`, ingest.offset, size);
        });
        touch();
        if (response.status === 416 && start > 0) {
          // The partial file is longer than the blob the server has: start over.
          await response.body?.cancel();
          await ingest.reset();
          problem = "range not satisfiable";
        } else if (!response.ok) {
          throw await registryError(response, `cannot download ${digest}`);
        } else {
          if (response.status === 206) {
            const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
            if (range === null || Number(range[1]) !== start) {
              // Not the part asked for: throw the partial file away and take the whole blob.
              await response.body?.cancel();
              await ingest.reset();
              continue;
            }
            if (range[3] !== "*" && Number(range[3]) !== size) {
              await response.body?.cancel();
              throw new BlobVerificationError(
                `${digest}: the registry has ${range[3]} bytes, the manifest says ${size}`,
              );
            }
          } else {
            if (start > 0) await ingest.reset(); // the server ignored Range: it sends everything again
            const length = response.headers.get("content-length");
            if (length !== null && Number(length) !== size) {
              await response.body?.cancel();
              throw new BlobVerificationError(
                `${digest}: the registry sends ${length} bytes, the manifest says ${size}`,
              );
            }
          }
          report("Downloading", ingest.offset, size);
          if (response.body !== null) {
            for await (const chunk of response.body) {
              touch();
              await ingest.write(chunk);
              report("Downloading", ingest.offset, size);
            }
          }
          if (ingest.offset === size) return;
          problem = `connection closed after ${ingest.offset} of ${size} bytes`;
        }
      } catch (error) {
        if (error instanceof BlobVerificationError || error instanceof RegistryError || this.#signal?.aborted) {
          throw error;
        }
        problem = idle.signal.aborted ? `no data for ${this.retry.idleTimeoutMs / 1000}s` : (error as Error).message;
      } finally {
        clearTimeout(timer);
      }
      if (ingest.offset > start) failures = 0;
      failures++;
      if (failures >= this.retry.attempts) {
        throw new Error(`cannot download ${digest}: ${problem} (gave up after ${failures} attempts)`);
      }
      const delay = backoffDelay(failures - 1, this.retry);
      report(`Retrying in ${Math.ceil(delay / 1000)}s: ${problem}`, ingest.offset, size);
      await sleep(delay, this.#signal);
    }
  }
}

/** A layer in the cache, ready for extraction. */
export interface PulledLayer {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly path: string;
}

/** What `pullImage` leaves in the cache and returns. */
export interface PulledImage {
  /** The reference, normalised: `docker.io/library/ubuntu:latest`. */
  readonly reference: string;
  readonly parsed: ImageReference;
  /** The digest the reference resolved to (an index's, for multi-platform images), as `docker pull` prints it. */
  readonly digest: string;
  /** The digest of the image manifest for the chosen platform. */
  readonly manifestDigest: string;
  readonly manifest: ImageManifest;
  readonly configDigest: string;
  readonly config: ImageConfig;
  readonly configPath: string;
  readonly platform: Platform;
  readonly layers: readonly PulledLayer[];
  /** Bytes of blobs downloaded by this pull (0 when everything was cached). */
  readonly downloadedBytes: number;
}

export interface PullOptions {
  /** The blob cache's folder (blobs under `blobs/sha256/`). */
  readonly cacheDir: string;
  /** `os/arch[/variant]`; default: the host's. */
  readonly platform?: string | Platform;
  readonly insecure?: boolean;
  /** Explicit credentials (`--username`/`--password-stdin`); otherwise `~/.docker/config.json`'s. */
  readonly credentials?: Credentials;
  /** The Docker configuration to read credentials from; null for none. Default: `$DOCKER_CONFIG` or `~/.docker`. */
  readonly dockerConfig?: string | null;
  readonly progress?: PullProgress;
  /** Layers downloaded at the same time (default 3, as Docker). */
  readonly concurrency?: number;
  readonly retry?: Partial<RetryPolicy>;
  readonly signal?: AbortSignal;
}

/** Runs `work` over `items`, `limit` at a time; the first failure aborts the rest. */
async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Nested indexes (an index pointing at an index) are followed this deep. */
const MAX_INDEX_DEPTH = 3;

/** A layer of a pull under way. */
export interface StreamedLayer extends PulledLayer {
  /**
   * The layer's bytes while they download (from the cache if already
   * there); the stream fails unless they match the digest. Open each layer
   * once, in order: a digest the manifest lists twice reads the cache the
   * second time.
   */
  open(): Promise<ReadableStream<Uint8Array>>;
}

/** A pull whose manifest and config are in: the layers are downloading. */
export interface PullUnderway extends Omit<PulledImage, "layers" | "downloadedBytes"> {
  readonly layers: readonly StreamedLayer[];
  /** Settles once every layer is in the cache (verified and fsynced), or at the first failure. */
  readonly done: Promise<PulledImage>;
  /** Closes the read handles no stream took; call once `done` has settled. */
  close(): void;
}

/**
 * Pulls an image into the blob cache: resolves the reference, picks the
 * platform from an index, fetches and verifies the manifest, the config and
 * every layer (in parallel). Stops there: extraction is the caller's.
 */
export async function pullImage(reference: string, options: PullOptions): Promise<PulledImage> {
  const pull = await startPull(reference, options);
  try {
    return await pull.done;
  } finally {
    pull.close();
  }
}

/**
 * Starts a pull: resolves the reference, picks the platform from an index,
 * fetches and verifies the manifest and the config, and returns while the
 * layers download (in parallel, in manifest order), so that they can be
 * extracted as they arrive.
 */
export async function startPull(reference: string, options: PullOptions): Promise<PullUnderway> {
  const ref = parseReference(reference);
  const name = formatReference(ref);
  const progress = options.progress ?? createProgress("quiet");
  const explicitPlatform = options.platform !== undefined;
  const want = typeof options.platform === "string"
    ? parsePlatform(options.platform)
    : options.platform ?? hostPlatform();
  let credentials = options.credentials;
  if (credentials === undefined && options.dockerConfig !== null) {
    const config = await loadDockerConfig(options.dockerConfig ?? undefined);
    if (config !== undefined) credentials = credentialsFromDockerConfig(config, ref.domain);
  }
  // Aborted on the first failure, so that parallel downloads stop (their partial files stay for a resume).
  const failure = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failure.signal]) : failure.signal;
  const client = new RegistryClient(ref.domain, {
    insecure: options.insecure ?? false,
    credentials,
    ...(options.retry ? { retry: options.retry } : {}),
    signal,
  });
  const cache = new BlobCache(options.cacheDir);

  progress.note(`${ref.digest ?? ref.tag}: Pulling from ${ref.repository}`);
  const top = await client.fetchManifest(ref.repository, manifestReference(ref), { cache });
  let current = top;
  for (let depth = 0; current.manifest.kind === "index"; depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw new Error(`${name}: indexes nested more than ${MAX_INDEX_DEPTH} deep`);
    const entry = selectManifest(current.manifest, want);
    current = await client.fetchManifest(ref.repository, entry.digest, { cache, descriptor: entry });
  }
  const manifest = current.manifest;

  if (manifest.config.size > MAX_CONFIG_BYTES) {
    throw new Error(`${name}: the image config is ${manifest.config.size} bytes, more than ${MAX_CONFIG_BYTES}`);
  }
  const { path: configPath } = await client.downloadBlob(ref.repository, manifest.config, cache);
  const config = parseImageConfig(await cache.read(manifest.config.digest, MAX_CONFIG_BYTES));
  const platform: Platform = {
    os: config.os,
    architecture: config.architecture,
    ...(config.variant ? { variant: config.variant } : {}),
  };
  if (platformScore(want, platform) === 0) {
    const message = `${name} is for ${formatPlatform(platform)}, not ${formatPlatform(want)}`;
    if (explicitPlatform) throw new Error(message);
    progress.note(`Warning: ${message}`);
  }
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new Error(
      `${name}: the config lists ${config.rootfs.diff_ids.length} layers, the manifest ${manifest.layers.length}`,
    );
  }

  const unique = [...new Map(manifest.layers.map((layer) => [layer.digest, layer])).values()];
  const feeds = new Map(unique.map((layer) => [layer.digest, new BlobFeed(layer.size)]));
  const finished = new Map<string, Promise<unknown>>();
  for (const layer of unique) progress.update(shortDigest(layer.digest), "Waiting", 0, layer.size);
  let downloadedBytes = 0;
  const downloads = inParallel(unique, options.concurrency ?? 3, (layer) => {
    const id = shortDigest(layer.digest);
    const download = client.downloadBlob(ref.repository, layer, cache, (status, done, total) => {
      progress.update(id, status, done, total);
    }, feeds.get(layer.digest)).then((result) => {
      if (result.downloaded) downloadedBytes += layer.size;
      else progress.update(id, "Already exists");
    }, (error) => {
      progress.update(id, failure.signal.aborted ? "Cancelled" : `Failed: ${(error as Error).message}`);
      failure.abort(error);
      throw error;
    });
    finished.set(layer.digest, download);
    return download;
  });
  const done = downloads.finally(() => progress.finish()).then((): PulledImage => {
    progress.note(`Digest: ${top.digest}`);
    progress.note(
      downloadedBytes > 0 ? `Status: Downloaded newer image for ${name}` : `Status: Image is up to date for ${name}`,
    );
    return { ...image, layers, downloadedBytes };
  });
  // A layer whose download never started (an earlier one failed) fails its reader too.
  done.catch((error) => feeds.forEach((feed) => feed.fail(error)));

  const opened = new Set<string>();
  const layers = manifest.layers.map((layer) => ({
    digest: layer.digest,
    mediaType: layer.mediaType,
    size: layer.size,
    path: cache.path(layer.digest),
  }));
  const image = {
    reference: name,
    parsed: ref,
    digest: top.digest,
    manifestDigest: current.digest,
    manifest,
    configDigest: manifest.config.digest,
    config,
    configPath,
    platform,
  };
  return {
    ...image,
    layers: layers.map((layer) => ({
      ...layer,
      open: async () => {
        if (!opened.has(layer.digest)) {
          opened.add(layer.digest);
          return feeds.get(layer.digest)!.readable();
        }
        await (finished.get(layer.digest) ?? done);
        return (await Deno.open(layer.path)).readable;
      },
    })),
    done,
    close: () => feeds.forEach((feed) => feed.close()),
  };
}
