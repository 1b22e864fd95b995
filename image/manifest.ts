/**
 * Manifests as registries serve them: the OCI image index and manifest,
 * Docker's manifest list and schema 2 manifest. Docker schema 1 is refused.
 * Also the choice of one platform from an index, the way containerd's
 * `platforms` package matches them.
 *
 * ```ts
 * const parsed = parseManifest(bytes, response.headers.get("content-type"));
 * if (parsed.kind === "index") {
 *   const chosen = selectManifest(parsed, parsePlatform("linux/arm64"));
 * }
 * ```
 *
 * @module
 */
import { validateDigest } from "./reference.ts";

export const MEDIA_TYPE = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

/** What gcr asks a registry for, most preferred first (a registry picks the first it can serve). */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE.ociIndex,
  MEDIA_TYPE.ociManifest,
  MEDIA_TYPE.dockerManifestList,
  MEDIA_TYPE.dockerManifest,
].join(", ");

/** Layer media types gcr can extract (the compression follows from the type). */
export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "application/vnd.oci.image.layer.v1.tar",
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd",
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
  "application/vnd.docker.image.rootfs.diff.tar",
  "application/vnd.docker.image.rootfs.diff.tar.zstd",
  // Non-distributable ("foreign") layers: registries that hold them serve them like any other.
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
]);

/** Manifests larger than this are refused while reading (containerd and the registry use 4 MiB too). */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Image configurations larger than this are refused. */
export const MAX_CONFIG_BYTES = 16 << 20;

/** An OCI platform: `linux/arm64/v8`. */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  readonly "os.version"?: string;
}

/** A content descriptor: what a manifest says about a blob or another manifest. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly urls?: readonly string[];
}

/** An OCI image index or a Docker manifest list. */
export interface ImageIndex {
  readonly kind: "index";
  readonly mediaType: string;
  readonly manifests: readonly Descriptor[];
}

/** An OCI image manifest or a Docker schema 2 manifest. */
export interface ImageManifest {
  readonly kind: "manifest";
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The parts of an image configuration that gcr reads; the rest is kept as is. */
export interface ImageConfig {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly config?: {
    readonly Env?: readonly string[];
    readonly Entrypoint?: readonly string[] | null;
    readonly Cmd?: readonly string[] | null;
    readonly WorkingDir?: string;
    readonly User?: string;
  };
  readonly rootfs: { readonly type: string; readonly diff_ids: readonly string[] };
  readonly [key: string]: unknown;
}

function describe(value: unknown): string {
  return value === undefined ? "missing" : JSON.stringify(value);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`invalid ${what}: not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Checks a descriptor's fields; `where` names it in errors (`layer 2`). */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  const fields = object(value, where);
  const { mediaType, digest, size, platform, annotations, urls } = fields;
  if (typeof mediaType !== "string" || mediaType === "") {
    throw new Error(`invalid ${where}: mediaType is ${describe(mediaType)}`);
  }
  if (typeof digest !== "string") throw new Error(`invalid ${where}: digest is ${describe(digest)}`);
  try {
    validateDigest(digest);
  } catch (error) {
    throw new Error(`invalid ${where}: ${(error as Error).message}`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new Error(`invalid ${where}: size is ${describe(size)}`);
  }
  let parsedPlatform: Platform | undefined;
  if (platform !== undefined && platform !== null) {
    const p = object(platform, `${where} platform`);
    if (typeof p.os !== "string" || typeof p.architecture !== "string") {
      throw new Error(`invalid ${where}: platform needs os and architecture strings`);
    }
    parsedPlatform = {
      os: p.os,
      architecture: p.architecture,
      ...(typeof p.variant === "string" && p.variant !== "" ? { variant: p.variant } : {}),
      ...(typeof p["os.version"] === "string" ? { "os.version": p["os.version"] } : {}),
    };
  }
  return {
    mediaType,
    digest,
    size,
    ...(parsedPlatform !== undefined ? { platform: parsedPlatform } : {}),
    ...(annotations !== undefined && annotations !== null
      ? { annotations: object(annotations, `${where} annotations`) as Record<string, string> }
      : {}),
    ...(Array.isArray(urls) ? { urls: urls.filter((u): u is string => typeof u === "string") } : {}),
  };
}

const SCHEMA1_MESSAGE = "it is a Docker image manifest version 2, schema 1, which gcr does not support " +
  "(deprecated since 2017): ask its publisher to push it again with a current tool";

/**
 * Parses a manifest body. The type comes from the body's `mediaType`, else
 * from the `Content-Type` header, else from its shape (`manifests` or
 * `layers`), as the OCI spec allows `mediaType` to be absent. Schema 1 is
 * refused with a message that says so.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string | null): ImageIndex | ImageManifest {
  const headerType = contentType?.split(";")[0]?.trim().toLowerCase();
  if (headerType === MEDIA_TYPE.dockerSchema1 || headerType === MEDIA_TYPE.dockerSchema1Signed) {
    throw new Error(`unsupported manifest: ${SCHEMA1_MESSAGE}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new Error(`invalid manifest: ${(error as Error).message}`);
  }
  const fields = object(json, "manifest");
  if (fields.schemaVersion === 1) throw new Error(`unsupported manifest: ${SCHEMA1_MESSAGE}`);
  if (fields.schemaVersion !== 2) {
    throw new Error(`unsupported manifest: schemaVersion is ${describe(fields.schemaVersion)}, not 2`);
  }
  let mediaType = typeof fields.mediaType === "string" ? fields.mediaType : undefined;
  if (mediaType === undefined && headerType !== undefined && headerType !== "application/json") mediaType = headerType;
  const hasManifests = Array.isArray(fields.manifests);
  const hasLayers = Array.isArray(fields.layers) || fields.config !== undefined;
  if (mediaType === undefined) {
    if (hasManifests && hasLayers) throw new Error("invalid manifest: it has both manifests and layers");
    if (hasManifests) mediaType = MEDIA_TYPE.ociIndex;
    else if (hasLayers) mediaType = MEDIA_TYPE.ociManifest;
    else throw new Error("invalid manifest: no mediaType, and neither manifests nor layers");
  }

  switch (mediaType) {
    case MEDIA_TYPE.ociIndex:
    case MEDIA_TYPE.dockerManifestList: {
      if (!hasManifests) throw new Error(`invalid ${mediaType}: manifests is ${describe(fields.manifests)}`);
      const manifests = (fields.manifests as unknown[]).map((d, i) => parseDescriptor(d, `manifest entry ${i + 1}`));
      return { kind: "index", mediaType, manifests };
    }
    case MEDIA_TYPE.ociManifest:
    case MEDIA_TYPE.dockerManifest: {
      const config = parseDescriptor(fields.config, "config descriptor");
      if (!Array.isArray(fields.layers)) throw new Error(`invalid ${mediaType}: layers is ${describe(fields.layers)}`);
      const layers = fields.layers.map((d, i) => parseDescriptor(d, `layer ${i + 1}`));
      if (config.mediaType !== MEDIA_TYPE.ociConfig && config.mediaType !== MEDIA_TYPE.dockerConfig) {
        throw new Error(`not a container image: its config has media type ${config.mediaType}`);
      }
      for (const [i, layer] of layers.entries()) {
        if (!LAYER_MEDIA_TYPES.has(layer.mediaType)) {
          throw new Error(`unsupported layer ${i + 1} (${layer.digest}): media type ${layer.mediaType}`);
        }
      }
      return {
        kind: "manifest",
        mediaType,
        config,
        layers,
        ...(fields.annotations !== undefined && fields.annotations !== null
          ? { annotations: object(fields.annotations, "manifest annotations") as Record<string, string> }
          : {}),
      };
    }
    case MEDIA_TYPE.dockerSchema1:
    case MEDIA_TYPE.dockerSchema1Signed:
      throw new Error(`unsupported manifest: ${SCHEMA1_MESSAGE}`);
    default:
      throw new Error(`unsupported manifest media type ${mediaType}`);
  }
}

/** Parses an image configuration blob and checks the fields gcr relies on. */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new Error(`invalid image config: ${(error as Error).message}`);
  }
  const fields = object(json, "image config");
  if (typeof fields.os !== "string" || typeof fields.architecture !== "string") {
    throw new Error("invalid image config: os and architecture must be strings");
  }
  const rootfs = object(fields.rootfs, "image config rootfs");
  if (rootfs.type !== "layers" || !Array.isArray(rootfs.diff_ids)) {
    throw new Error("invalid image config: rootfs must be of type layers with diff_ids");
  }
  return fields as unknown as ImageConfig;
}

/** `linux/arm64/v8` → `{os, architecture, variant}`; `arm64` alone means linux/arm64. */
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().toLowerCase().split("/");
  if (parts.some((p) => p === "" || !/^[a-z0-9._-]+$/.test(p)) || parts.length > 3) {
    throw new Error(`invalid platform ${JSON.stringify(spec)}: expected os/arch[/variant]`);
  }
  if (parts.length === 1) return normalizePlatform({ os: "linux", architecture: parts[0]! });
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform({ os, architecture, ...(variant !== undefined ? { variant } : {}) });
}

/** `linux/arm64/v8`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/**
 * containerd's `platforms.Normalize`: `x86_64` → `amd64`, `aarch64` →
 * `arm64` (variant `v8`), `armhf` → `arm/v7`, `armel` → `arm/v6`, `i386` →
 * `386`; a variant `8` becomes `v8`.
 */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === "macos") os = "darwin";
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() ?? "";
  switch (architecture) {
    case "i386":
      architecture = "386";
      variant = "";
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      architecture = "amd64";
      if (variant === "v1") variant = "";
      break;
    case "aarch64":
    case "arm64":
      architecture = "arm64";
      if (variant === "8" || variant === "v8" || variant === "") variant = "v8";
      break;
    case "armhf":
      architecture = "arm";
      variant = "v7";
      break;
    case "armel":
      architecture = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === "") variant = "v7";
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  return {
    os,
    architecture,
    ...(variant !== "" ? { variant } : {}),
    ...(p["os.version"] !== undefined ? { "os.version": p["os.version"] } : {}),
  };
}

/** The platform of this machine, as an image built for it would say: `linux/amd64`, `linux/arm64/v8`. */
export function hostPlatform(): Platform {
  const os = Deno.build.os === "darwin" ? "darwin" : Deno.build.os;
  return normalizePlatform({ os, architecture: Deno.build.arch });
}

/**
 * How well an image built for `have` runs on `want`: 0 when it does not,
 * higher for a better fit. An exact match scores highest; older variants of
 * the same architecture (arm/v6 on arm/v7, amd64 v2 on v3) score lower.
 */
export function platformScore(want: Platform, have: Platform): number {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return 0;
  const wv = w.variant ?? "";
  const hv = h.variant ?? "";
  if (wv === hv) return 100;
  if (w.architecture !== "arm" && w.architecture !== "amd64") return 0;
  // An amd64 without variant is v1 (its variants are micro-architecture levels).
  const level = (v: string) => v === "" && w.architecture === "amd64" ? 1 : Number(/^v(\d+)$/.exec(v)?.[1] ?? NaN);
  const older = level(wv) - level(hv);
  return older > 0 ? 50 - older : 0;
}

/** Whether an index entry is an attestation (SBOM, provenance) rather than an image for some platform. */
export function isAttestation(descriptor: Descriptor): boolean {
  return descriptor.annotations?.["vnd.docker.reference.type"] === "attestation-manifest" ||
    (descriptor.platform?.os === "unknown" && descriptor.platform?.architecture === "unknown");
}

const MANIFEST_TYPES: ReadonlySet<string> = new Set([
  MEDIA_TYPE.ociIndex,
  MEDIA_TYPE.ociManifest,
  MEDIA_TYPE.dockerManifestList,
  MEDIA_TYPE.dockerManifest,
]);

/**
 * The entry of `index` to pull for `want`: attestations and non-manifest
 * entries skipped, the best-scoring platform chosen (the first of equals, as
 * the index orders them), an entry without a platform only when nothing
 * else fits. The error lists what the index does offer.
 */
export function selectManifest(index: ImageIndex, want: Platform): Descriptor {
  let best: Descriptor | undefined;
  let bestScore = 0;
  let unlabelled: Descriptor | undefined;
  const offered: string[] = [];
  for (const entry of index.manifests) {
    if (isAttestation(entry) || !MANIFEST_TYPES.has(entry.mediaType)) continue;
    if (entry.platform === undefined) {
      unlabelled ??= entry;
      continue;
    }
    offered.push(formatPlatform(entry.platform));
    const score = platformScore(want, entry.platform);
    if (score > bestScore) {
      best = entry;
      bestScore = score;
    }
  }
  const chosen = best ?? unlabelled;
  if (chosen === undefined) {
    throw new Error(
      `no image for ${formatPlatform(want)} in the index (it has: ${offered.length ? offered.join(", ") : "none"})`,
    );
  }
  return chosen;
}
