/**
 * Registry authentication: the `WWW-Authenticate` challenge, the anonymous
 * (or credentialed) bearer-token flow of the Docker token spec, basic auth,
 * and credentials from `~/.docker/config.json`.
 *
 * The registry answers a request without (or with a stale) Authorization
 * with 401 and a challenge such as
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"`.
 * For Bearer the client asks the realm for a token (with basic credentials
 * when it has some) and repeats the request with `Authorization: Bearer …`;
 * for Basic it repeats it with the credentials. Tokens are cached per realm,
 * service and scope until they expire.
 *
 * ```ts
 * const auth = new Authenticator({ domain: "docker.io", send: fetch });
 * let response = await fetch(url, { headers: auth.headers(scope) });
 * if (response.status === 401 && await auth.answer(response, scope)) {
 *   response = await fetch(url, { headers: auth.headers(scope) });
 * }
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { DEFAULT_DOMAIN, isLoopback } from "./reference.ts";
import { isObject } from "../host/json.ts";

/** A user name and password (or personal access token), or an OAuth2 refresh token from `docker login`. */
export type Credentials =
  | { readonly username: string; readonly password: string }
  | { readonly username?: string; readonly identityToken: string };

/** One challenge of a `WWW-Authenticate` header: the scheme (lower case) and its parameters (names lower case). */
export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN_CHARS = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 §11.6.1) into its challenges.
 * Quoted values may hold commas, spaces and backslash escapes; several
 * challenges may share one header.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let pos = 0;
  const skipSpace = () => {
    while (pos < header.length && (header[pos] === " " || header[pos] === "\t")) pos++;
  };
  const readToken = (): string => {
    const start = pos;
    while (pos < header.length && TOKEN_CHARS.test(header[pos]!)) pos++;
    return header.slice(start, pos);
  };
  const readQuoted = (): string => {
    let value = "";
    pos++; // the opening quote
    while (pos < header.length && header[pos] !== '"') {
      if (header[pos] === "\\" && pos + 1 < header.length) pos++;
      value += header[pos++];
    }
    pos++; // the closing quote (or past the end)
    return value;
  };

  while (pos < header.length) {
    while (pos < header.length && (header[pos] === "," || header[pos] === " " || header[pos] === "\t")) pos++;
    const scheme = readToken();
    if (scheme === "") {
      pos++; // not a token: skip the character rather than loop forever
      continue;
    }
    const challenge = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> };
    challenges.push(challenge);
    skipSpace();
    for (;;) {
      const start = pos;
      const name = readToken();
      skipSpace();
      if (name === "" || header[pos] !== "=") {
        pos = start; // the next challenge's scheme, or the end
        break;
      }
      pos++;
      if (header[pos] === "=" || pos >= header.length || header[pos] === ",") {
        // token68 (`Negotiate abc==`): not used by registries; skip it.
        while (pos < header.length && header[pos] !== ",") pos++;
      } else {
        skipSpace();
        challenge.params[name.toLowerCase()] = header[pos] === '"' ? readQuoted() : readToken();
      }
      skipSpace();
      if (header[pos] !== ",") break;
      pos++;
      skipSpace();
    }
  }
  return challenges;
}

/** A token as the realm returned it, with the time it stops being usable (ms since the epoch). */
export interface Token {
  readonly token: string;
  readonly expiresAt: number;
}

/** Tokens shorter-lived than this are treated as living this long (token spec: "should never be less than 60"). */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** A token is renewed this long before it expires, so that it does not expire in flight. */
const TOKEN_EXPIRY_MARGIN_MS = 5_000;

/**
 * Reads a token endpoint's JSON answer: `token` (or `access_token`),
 * `expires_in` (seconds, default 60) counted from `issued_at` (when present,
 * sane and not in the future) or from `now`.
 */
export function parseTokenResponse(body: unknown, now: number): Token {
  if (typeof body !== "object" || body === null) throw new Error("the token response is not a JSON object");
  const fields = body as Record<string, unknown>;
  const token = typeof fields.token === "string" && fields.token !== ""
    ? fields.token
    : typeof fields.access_token === "string" && fields.access_token !== ""
    ? fields.access_token
    : undefined;
  if (token === undefined) throw new Error("the token response has no token");
  let lifetime = typeof fields.expires_in === "number" && Number.isFinite(fields.expires_in)
    ? fields.expires_in
    : DEFAULT_TOKEN_LIFETIME_S;
  if (lifetime < DEFAULT_TOKEN_LIFETIME_S) lifetime = DEFAULT_TOKEN_LIFETIME_S;
  let issued = now;
  if (typeof fields.issued_at === "string") {
    const parsed = Date.parse(fields.issued_at);
    if (Number.isFinite(parsed) && parsed <= now) issued = parsed;
  }
  return { token, expiresAt: issued + lifetime * 1000 };
}

/** The `auths` part of a Docker client configuration. */
export interface DockerConfig {
  readonly path: string;
  readonly auths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly credsStore?: string;
  readonly credHelpers?: Readonly<Record<string, string>>;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(): string | undefined {
  const dir = Deno.env.get("DOCKER_CONFIG");
  if (dir) return join(dir, "config.json");
  const home = Deno.env.get("HOME");
  return home ? join(home, ".docker", "config.json") : undefined;
}

/** Reads a Docker client configuration; a missing file gives `undefined`, a broken one an error naming it. */
export async function loadDockerConfig(path = dockerConfigPath()): Promise<DockerConfig | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`cannot parse ${path}: ${(error as Error).message}`);
  }
  if (!isObject(parsed)) throw new Error(`cannot parse ${path}: not a JSON object`);
  const fields = parsed;
  const auths = isObject(fields.auths) ? fields.auths as Record<string, Record<string, unknown>> : {};
  return {
    path,
    auths,
    ...(typeof fields.credsStore === "string" ? { credsStore: fields.credsStore } : {}),
    ...(isObject(fields.credHelpers) ? { credHelpers: fields.credHelpers as Record<string, string> } : {}),
  };
}

/** `https://index.docker.io/v1/` → `index.docker.io`, `Registry.example.com:5000/` → `registry.example.com:5000`. */
function authKeyHost(key: string): string {
  return key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/\/.*$/, "").toLowerCase();
}

/** The names `docker login` may have stored a registry's credentials under. */
function hostAliases(domain: string): string[] {
  const host = domain.toLowerCase();
  return host === DEFAULT_DOMAIN ? ["index.docker.io", "docker.io", "registry-1.docker.io"] : [host];
}

/**
 * The credentials `docker login` stored for `domain` in `config.auths`: the
 * base64 `auth` field (`user:password`), or `username`/`password`, and
 * `identitytoken`. Keys may be URLs or hosts; Docker Hub's key is
 * `https://index.docker.io/v1/`.
 */
export function credentialsFromDockerConfig(config: DockerConfig, domain: string): Credentials | undefined {
  const aliases = hostAliases(domain);
  for (const [key, entry] of Object.entries(config.auths)) {
    if (!aliases.includes(authKeyHost(key)) || typeof entry !== "object" || entry === null) continue;
    const identityToken = typeof entry.identitytoken === "string" && entry.identitytoken !== ""
      ? entry.identitytoken
      : undefined;
    let username = typeof entry.username === "string" ? entry.username : undefined;
    let password = typeof entry.password === "string" ? entry.password : undefined;
    if (typeof entry.auth === "string" && entry.auth !== "") {
      let decoded: string;
      try {
        decoded = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.fromBase64(entry.auth));
      } catch {
        throw new Error(`cannot read the credentials for ${key} in ${config.path}: "auth" is not base64`);
      }
      const colon = decoded.indexOf(":");
      if (colon < 0) {
        throw new Error(`cannot read the credentials for ${key} in ${config.path}: "auth" is not user:password`);
      }
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    if (identityToken !== undefined) {
      return username !== undefined ? { username, identityToken } : { identityToken };
    }
    if (username !== undefined && password !== undefined && (username !== "" || password !== "")) {
      return { username, password };
    }
  }
  return undefined;
}

/** Sends a request (with retries, without following redirects); the registry client's transport. */
export type Send = (url: URL, init: RequestInit) => Promise<Response>;

export interface AuthenticatorOptions {
  /** The registry as named in references (`docker.io`, `localhost:5000`): for messages and the `http:` rule. */
  readonly domain: string;
  /** Explicit credentials (`--username`/`--password-stdin`) or those from the Docker configuration. */
  readonly credentials?: Credentials | undefined;
  /** Whether plain http to a non-loopback token realm is acceptable (`--insecure`). */
  readonly insecure?: boolean;
  readonly send: Send;
  /** Milliseconds since the epoch; a test may move time forward. */
  readonly now?: () => number;
}

/** What the registry asked for, remembered so that later requests can carry auth without a 401 first. */
type Scheme = { kind: "none" } | { kind: "basic" } | { kind: "bearer"; realm: string; service?: string };

/** Holds a registry's auth state: the scheme it asked for and the tokens obtained, per scope. */
export class Authenticator {
  readonly #options: AuthenticatorOptions;
  readonly #now: () => number;
  #scheme: Scheme = { kind: "none" };
  readonly #tokens = new Map<string, Token>();
  /** Token requests in flight, so that parallel layer downloads share one. */
  readonly #pending = new Map<string, Promise<Token>>();

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  #key(scope: string): string {
    if (this.#scheme.kind !== "bearer") return scope;
    return `${this.#scheme.realm}\n${this.#scheme.service ?? ""}\n${scope}`;
  }

  #basic(): string {
    const credentials = this.#options.credentials;
    if (credentials === undefined || !("password" in credentials)) {
      throw new Error(
        `${this.#options.domain} requires a user name and password: pass --username and --password-stdin, or run docker login`,
      );
    }
    return `Basic ${new TextEncoder().encode(`${credentials.username}:${credentials.password}`).toBase64()}`;
  }

  /**
   * The Authorization header for a request in `scope` (`repository:x:pull`),
   * when the registry has asked for auth before: a cached token (fetching a
   * new one when the old one expired), or basic credentials.
   */
  async authorization(scope: string): Promise<string | undefined> {
    switch (this.#scheme.kind) {
      case "none":
        return undefined;
      case "basic":
        return this.#basic();
      case "bearer": {
        const key = this.#key(scope);
        const cached = this.#tokens.get(key);
        if (cached !== undefined && this.#now() < cached.expiresAt - TOKEN_EXPIRY_MARGIN_MS) {
          return `Bearer ${cached.token}`;
        }
        return `Bearer ${(await this.#token(scope)).token}`;
      }
    }
  }

  /**
   * Reads the challenge of a 401 answer to a request in `scope` that carried
   * `sent` as Authorization, and gets what it asks for (a fresh token for
   * Bearer). Returns whether repeating the request can help: false when there
   * is no challenge it understands, or when basic credentials were refused.
   * The caller repeats a request once at most.
   */
  async answer(response: Response, scope: string, sent: string | undefined): Promise<boolean> {
    const header = response.headers.get("www-authenticate");
    if (header === null) return false;
    const challenges = parseWwwAuthenticate(header);
    const bearer = challenges.find((c) => c.scheme === "bearer" && c.params.realm);
    const basic = challenges.find((c) => c.scheme === "basic");
    if (bearer !== undefined) {
      const { realm, service } = bearer.params;
      this.#scheme = { kind: "bearer", realm: realm!, ...(service !== undefined ? { service } : {}) };
      const key = this.#key(scope);
      const cached = this.#tokens.get(key);
      if (cached !== undefined) {
        // Another request may have renewed the token since this one was sent.
        if (sent !== `Bearer ${cached.token}`) return true;
        this.#tokens.delete(key);
      }
      // A scope in the challenge is what this request needs; ask for it as well as ours.
      const wanted = [...new Set([scope, ...(bearer.params.scope ?? "").split(" ").filter((s) => s !== "")])];
      await this.#token(wanted.join(" "), key);
      return true;
    }
    if (basic !== undefined) {
      if (sent?.startsWith("Basic ")) return false;
      this.#scheme = { kind: "basic" };
      this.#basic(); // throws the helpful error when there are no credentials
      return true;
    }
    return false;
  }

  /** Gets (or joins the fetch of) a token for `scopes` (space-separated), cached under `key`. */
  #token(scopes: string, key = this.#key(scopes)): Promise<Token> {
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    const promise = this.#fetchToken(scopes).then((token) => {
      this.#tokens.set(key, token);
      return token;
    }).finally(() => this.#pending.delete(key));
    this.#pending.set(key, promise);
    return promise;
  }

  async #fetchToken(scopes: string): Promise<Token> {
    if (this.#scheme.kind !== "bearer") throw new Error("no token realm known");
    const { realm, service } = this.#scheme;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new Error(`${this.#options.domain} named an invalid token realm ${JSON.stringify(realm)}`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new Error(`${this.#options.domain} named a token realm that is not http(s): ${realm}`);
    }
    if (url.protocol === "http:" && !this.#options.insecure && !isLoopback(url.host)) {
      throw new Error(
        `${this.#options.domain} named a plain-http token realm ${realm}: refusing it without --insecure`,
      );
    }
    const credentials = this.#options.credentials;
    const headers = new Headers();
    let init: RequestInit;
    if (credentials !== undefined && "identityToken" in credentials) {
      // `docker login` against an OAuth2 server stores a refresh token; trade it for an access token.
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: credentials.identityToken,
        client_id: "gcr",
        ...(service !== undefined ? { service } : {}),
        scope: scopes,
      });
      headers.set("content-type", "application/x-www-form-urlencoded");
      init = { method: "POST", headers, body: form.toString() };
    } else {
      if (service !== undefined) url.searchParams.set("service", service);
      for (const scope of scopes.split(" ")) url.searchParams.append("scope", scope);
      if (credentials !== undefined) headers.set("authorization", this.#basic());
      init = { method: "GET", headers };
    }
    const response = await this.#options.send(url, init);
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new Error(`the token realm ${realm} redirected (${response.status}): not supported`);
    }
    if (!response.ok) {
      const text = (await response.text()).slice(0, 300).trim();
      const who = credentials !== undefined ? "with the given credentials" : "anonymously";
      throw new Error(
        `cannot get a token ${who} from ${realm} for ${scopes}: ${response.status} ${response.statusText}${
          text ? `: ${text}` : ""
        }`,
      );
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      throw new Error(`cannot read the token from ${realm}: ${(error as Error).message}`);
    }
    try {
      return parseTokenResponse(body, this.#now());
    } catch (error) {
      throw new Error(`cannot read the token from ${realm}: ${(error as Error).message}`);
    }
  }
}
