/**
 * Real registry test fixtures for `gcr pull` / `img2rootfs` (issue 3).
 *
 * Everything here is built and served by independent tools, never by gcr's own code:
 * Debian's `docker-registry` (docker/distribution 2.8) serves, `umoci` and `skopeo`
 * build and push, `ocitool.py` (Python's tarfile, beside this file) writes the tar
 * entries that umoci cannot express. Deno is used only to start processes, for the
 * token service (Deno.serve + WebCrypto) and for the fault-injecting proxy.
 *
 * Debian packages needed (CI installs them):
 *   docker-registry  the registry server, /usr/bin/docker-registry
 *   skopeo           copies images between OCI layouts, dir:, docker-archive: and registries
 *   umoci            builds OCI layouts (init/new/unpack/repack/config/gc)
 *   apache2-utils    htpasswd, for basic auth
 *   debootstrap      the Debian rootfs of the "debian" image (when no cached rootfs exists)
 *   curl             the independent HTTP client of the tests
 *   zstd             zstd layers (ocitool.py) and checks
 *   python3          ocitool.py
 *   openssl          the X.509 certificate of the token service's signing key
 *   libcap2-bin      setcap (security.capability on a file of the "layers" image)
 *   attr             setfattr (user.test xattr)
 *   busybox-static   /bin/busybox, the content of the busybox images
 *
 * Built artifacts are cached under `${GCR_TEST_CACHE:-/var/tmp/gcr-test}/registry/recipe-<hash>/`,
 * where <hash> covers this file and ocitool.py: any change to a recipe builds afresh (and
 * recipe folders unused for a day are pruned). Every artifact is rebuilt from scratch when
 * missing. Cached layouts, archives and tars are shared: treat the paths this module
 * returns as read-only.
 *
 * Registries, token services and proxies listen on loopback only (127.0.0.1; the second
 * host of the redirect fault on 127.0.0.2). Each `stop()` ends only the process it started,
 * by pid, and removes only the temporary folders it made.
 */

export const APT_PACKAGES = [
  "docker-registry",
  "skopeo",
  "umoci",
  "apache2-utils",
  "debootstrap",
  "curl",
  "zstd",
  "python3",
  "openssl",
  "libcap2-bin",
  "attr",
  "busybox-static",
] as const;

export const TEST_CACHE_ROOT = Deno.env.get("GCR_TEST_CACHE") ?? "/var/tmp/gcr-test";
export const REGISTRY_CACHE = `${TEST_CACHE_ROOT}/registry`;
import { exists } from "../../host/files.ts";
import { sleep } from "../../host/time.ts";

const OCITOOL = new URL("./ocitool.py", import.meta.url).pathname;
const DEBIAN_MIRROR = "http://deb.debian.org/debian";

// ---------------------------------------------------------------- small helpers

const te = new TextEncoder();
const td = new TextDecoder();

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; throws (with its stderr) unless `allowFail`. */
export async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; stdin?: string | Uint8Array; allowFail?: boolean; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(typeof opts.stdin === "string" ? te.encode(opts.stdin) : opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const res = { code: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
  if (out.code !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${out.code}\n${res.stderr}${res.stdout}`);
  }
  return res;
}

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? te.encode(data) : data;
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

function b64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? te.encode(data) : data;
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A free TCP port on the given loopback address (bind port 0, read it, close). */
function freePort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Every process the fixtures started, killed on unload if a test forgot `stop()`. */
const livePids = new Set<number>();
globalThis.addEventListener("unload", () => {
  for (const pid of livePids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* already gone */ }
  }
});

const foundCommands = new Set<string>();
/** Checks the required commands exist and names the Debian packages when not. */
async function requireCommands(cmds: Record<string, string>): Promise<void> {
  const missing: string[] = [];
  for (const [cmd, pkg] of Object.entries(cmds)) {
    if (foundCommands.has(cmd)) continue;
    const r = await run("sh", ["-c", 'command -v "$1"', "sh", cmd], { allowFail: true });
    if (r.code !== 0) missing.push(`${cmd} (apt package ${pkg})`);
    else foundCommands.add(cmd);
  }
  if (missing.length) throw new Error(`registry fixtures need: ${missing.join(", ")}`);
}

// ---------------------------------------------------------------- registry

export type AuthMode = "none" | "basic" | "token";

export interface RegistryOptions {
  auth?: AuthMode;
  /** Valid credentials for "basic" and "token" (default gcr-user / gcr-pass). */
  username?: string;
  password?: string;
  /**
   * token: lifetime of issued tokens in seconds (default 300). docker-registry 2.8 accepts a
   * token until 60 s after its `exp`, so a test of expiry at the registry needs a value below
   * -60 (every token born expired); a test of client-side caching can count
   * `tokenService.requests` instead.
   */
  tokenExpiresIn?: number;
  /** token: whether anonymous clients get pull tokens (default true, like Docker Hub). */
  anonymousPull?: boolean;
}

export interface TokenRequest {
  /** Seconds since the token service started. */
  at: number;
  /** GET (Docker token spec) or POST (its OAuth2 form: grant_type password / refresh_token). */
  method: string;
  service: string | null;
  scopes: string[];
  account: string | null;
  /** The basic-auth user name sent, or null for anonymous. */
  user: string | null;
  status: number;
  granted: { type: string; name: string; actions: string[] }[];
}

export interface TokenService {
  /** http://127.0.0.1:PORT/token */
  realm: string;
  service: string;
  issuer: string;
  /** Every request received, in order. */
  requests: TokenRequest[];
  stop(): Promise<void>;
}

export interface Registry {
  /** "127.0.0.1:PORT", usable as an image reference prefix. */
  url: string;
  host: string;
  port: number;
  auth: AuthMode;
  /** Valid credentials ("" when auth is "none"). */
  username: string;
  password: string;
  tokenService?: TokenService;
  /** The registry's config and its storage live here; removed by stop(). */
  dir: string;
  pid: number;
  /** The registry's log so far. */
  log(): Promise<string>;
  /** Ends the registry process (by its pid) and the token service; removes `dir`. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts Debian's docker-registry on a free loopback port with its own config, filesystem
 * storage in a temporary folder and deletes enabled; resolves once `/v2/` answers.
 *   auth "basic": htpasswd -Bbn user pass.
 *   auth "token": a Docker token service (Deno.serve on another loopback port) issuing ES256
 *   JWTs whose header carries the signing certificate as `x5c`; the registry trusts that
 *   certificate through `rootcertbundle`. Anonymous clients get pull-only tokens.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  await requireCommands({ "docker-registry": "docker-registry" });
  const auth = opts.auth ?? "none";
  const username = auth === "none" ? "" : opts.username ?? "gcr-user";
  const password = auth === "none" ? "" : opts.password ?? "gcr-pass";
  const dir = await Deno.makeTempDir({ prefix: "gcr-registry-" });
  let token: TokenService | undefined;
  try {
    let authYaml = "";
    if (auth === "basic") {
      await requireCommands({ htpasswd: "apache2-utils" });
      const r = await run("htpasswd", ["-Bbn", username, password]);
      await Deno.writeTextFile(`${dir}/htpasswd`, r.stdout);
      authYaml = `auth:\n  htpasswd:\n    realm: gcr-test-registry\n    path: ${dir}/htpasswd\n`;
    } else if (auth === "token") {
      token = await startTokenService({
        dir,
        username,
        password,
        expiresIn: opts.tokenExpiresIn ?? 300,
        anonymousPull: opts.anonymousPull ?? true,
      });
      authYaml = [
        "auth:",
        "  token:",
        `    realm: ${token.realm}`,
        `    service: ${token.service}`,
        `    issuer: ${token.issuer}`,
        `    rootcertbundle: ${dir}/token-cert.pem`,
        "",
      ].join("\n");
    }
    await Deno.mkdir(`${dir}/storage`);
    const log = () => Deno.readTextFile(`${dir}/registry.log`).catch(() => "");
    // A port picked free can be taken before the registry binds it: then try another.
    for (let attempt = 1;; attempt++) {
      const port = freePort();
      const launched = await launchRegistry(dir, port, authYaml, log);
      if (launched === "address in use" && attempt < 5) continue;
      if (launched === "address in use") throw new Error(`docker-registry: no free port:\n${await log()}`);
      const { child, status, exited } = launched;
      let stopped: Promise<void> | undefined;
      const stop = () =>
        stopped ??= (async () => {
          if (!exited()) {
            child.kill("SIGTERM");
            const t = setTimeout(() => {
              if (!exited()) child.kill("SIGKILL");
            }, 5000);
            await status;
            clearTimeout(t);
          }
          await token?.stop();
          await Deno.remove(dir, { recursive: true });
        })();
      return {
        url: `127.0.0.1:${port}`,
        host: "127.0.0.1",
        port,
        auth,
        username,
        password,
        tokenService: token,
        dir,
        pid: child.pid,
        log,
        stop,
        [Symbol.asyncDispose]: stop,
      };
    }
  } catch (e) {
    await token?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Writes the config, starts docker-registry, waits until /v2/ answers (200 or 401). */
async function launchRegistry(
  dir: string,
  port: number,
  authYaml: string,
  log: () => Promise<string>,
): Promise<
  "address in use" | { child: Deno.ChildProcess; status: Promise<Deno.CommandStatus>; exited: () => boolean }
> {
  const config = [
    "version: 0.1",
    "log:",
    "  level: info",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${dir}/storage`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    "  secret: gcr-test-not-a-secret",
    "  headers:",
    "    X-Content-Type-Options: [nosniff]",
    authYaml,
  ].join("\n");
  await Deno.writeTextFile(`${dir}/config.yml`, config);
  // `exec` keeps the pid: the shell only sets up the log redirection.
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec docker-registry serve "$1" >"$2" 2>&1', "sh", `${dir}/config.yml`, `${dir}/registry.log`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  livePids.add(child.pid);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    livePids.delete(child.pid);
    return s;
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      const text = await log();
      if (/address already in use/.test(text)) return "address in use";
      throw new Error(`docker-registry exited early:\n${text}`);
    }
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`);
      await r.body?.cancel();
      // The header tells our registry from anything else that might hold the port.
      if ((r.status === 200 || r.status === 401) && r.headers.has("docker-distribution-api-version") && !exited) {
        return { child, status, exited: () => exited };
      }
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await status;
      throw new Error(`docker-registry did not answer on 127.0.0.1:${port}:\n${await log()}`);
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------- token service

function pem(label: string, der: Uint8Array): string {
  let s = "";
  for (const b of der) s += String.fromCharCode(b);
  const body = btoa(s).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function pemBody(text: string): string {
  const m = text.match(/-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/);
  if (!m?.[1]) throw new Error("no certificate in openssl output");
  return m[1].replace(/\s+/g, "");
}

function parseScope(scope: string): { type: string; name: string; actions: string[] } | null {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first < 0 || last <= first) return null;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(",").filter(Boolean),
  };
}

/**
 * The Docker token protocol (distribution's docs/spec/auth/token.md): GET /token with
 * service, scope (repeatable), account; optional basic auth. Answers
 * {"token","access_token","expires_in","issued_at"}. Also POST /token with an OAuth2 form
 * (oauth.md: grant_type=password with username/password, or grant_type=refresh_token;
 * access_type=offline adds a refresh_token); answers {"access_token","scope","expires_in",
 * "issued_at"[,"refresh_token"]}. Anonymous GETs get pull only (or nothing when
 * anonymousPull is false); valid credentials get every action asked for. The JWT is ES256, signed with a P-256
 * key generated here with WebCrypto; `x5c` carries the certificate openssl made for it,
 * which is also the registry's rootcertbundle.
 */
async function startTokenService(o: {
  dir: string;
  username: string;
  password: string;
  expiresIn: number;
  anonymousPull: boolean;
}): Promise<TokenService> {
  await requireCommands({ openssl: "openssl" });
  const service = "gcr-test-registry";
  const issuer = "gcr-test-token-service";
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  await Deno.writeTextFile(`${o.dir}/token-key.pem`, pem("PRIVATE KEY", pkcs8), { mode: 0o600 });
  await run("openssl", [
    "req",
    "-new",
    "-x509",
    "-sha256",
    "-key",
    `${o.dir}/token-key.pem`,
    "-out",
    `${o.dir}/token-cert.pem`,
    "-days",
    "30",
    "-subj",
    "/CN=gcr-test-token-service",
  ]);
  await Deno.remove(`${o.dir}/token-key.pem`);
  const x5c = pemBody(await Deno.readTextFile(`${o.dir}/token-cert.pem`));
  const started = performance.now();
  const requests: TokenRequest[] = [];
  const ac = new AbortController();

  const refreshTokens = new Map<string, string>();

  const sign = async (subject: string, aud: string, access: TokenRequest["granted"]) => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "ES256", x5c: [x5c] };
    const claims = {
      iss: issuer,
      sub: subject,
      aud,
      exp: now + o.expiresIn,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // WebCrypto's ECDSA signature is r||s (IEEE P1363), which is what JWS ES256 wants.
    const sig = new Uint8Array(
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, te.encode(input)),
    );
    return { token: `${input}.${b64url(sig)}`, issuedAt: new Date(now * 1000).toISOString() };
  };

  const grant = (record: TokenRequest, authenticated: boolean) => {
    for (const s of record.scopes) {
      const p = parseScope(s);
      if (!p) continue;
      const actions = authenticated
        ? p.actions
        : o.anonymousPull && p.type === "repository"
        ? p.actions.filter((a) => a === "pull")
        : [];
      record.granted.push({ ...p, actions });
    }
  };

  const unauthorized = (record: TokenRequest) => {
    record.status = 401;
    return Response.json({ details: "incorrect username or password" }, {
      status: 401,
      headers: { "www-authenticate": 'Basic realm="gcr-test-token-service"' },
    });
  };

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    // GET: query parameters. POST (the OAuth2 form of the spec, token.md "oauth"): a form body.
    const params = req.method === "POST" ? new URLSearchParams(await req.text()) : url.searchParams;
    const record: TokenRequest = {
      at: (performance.now() - started) / 1000,
      method: req.method,
      service: params.get("service"),
      scopes: params.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean),
      account: params.get("account") ?? params.get("username"),
      user: null,
      status: 200,
      granted: [],
    };
    requests.push(record);
    if (url.pathname !== "/token" || (req.method !== "GET" && req.method !== "POST")) {
      record.status = 404;
      return new Response("not found\n", { status: 404 });
    }
    const aud = record.service ?? service;

    if (req.method === "POST") {
      const grantType = params.get("grant_type");
      let user: string | undefined;
      if (grantType === "password") {
        record.user = params.get("username") ?? "";
        if (record.user !== o.username || params.get("password") !== o.password) return unauthorized(record);
        user = record.user;
      } else if (grantType === "refresh_token") {
        user = refreshTokens.get(params.get("refresh_token") ?? "");
        record.user = user ?? "";
        if (!user) return unauthorized(record);
      } else {
        record.status = 400;
        return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
      }
      grant(record, true);
      const { token, issuedAt } = await sign(user, aud, record.granted);
      const body: Record<string, unknown> = {
        access_token: token,
        scope: record.scopes.join(" "),
        expires_in: o.expiresIn,
        issued_at: issuedAt,
      };
      if (params.get("access_type") === "offline") {
        const refresh = crypto.randomUUID();
        refreshTokens.set(refresh, user);
        body.refresh_token = refresh;
      }
      return Response.json(body);
    }

    let authenticated = false;
    const authz = req.headers.get("authorization");
    if (authz) {
      const m = authz.match(/^Basic\s+(.+)$/i);
      let user = "", pass = "";
      if (m?.[1]) {
        const decoded = atob(m[1]);
        const i = decoded.indexOf(":");
        user = decoded.slice(0, i);
        pass = decoded.slice(i + 1);
      }
      record.user = user;
      if (!m || user !== o.username || pass !== o.password) return unauthorized(record);
      authenticated = true;
    }
    grant(record, authenticated);
    const { token, issuedAt } = await sign(authenticated ? o.username : "", aud, record.granted);
    return Response.json({ token, access_token: token, expires_in: o.expiresIn, issued_at: issuedAt });
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} }, handler);
  let stopped: Promise<void> | undefined;
  return {
    realm: `http://127.0.0.1:${server.addr.port}/token`,
    service,
    issuer,
    requests,
    stop: () =>
      stopped ??= (async () => {
        ac.abort();
        await server.finished;
      })(),
  };
}

// ---------------------------------------------------------------- built artifacts

/** The images `pushImage` can push. */
export type ImageKind =
  | "busybox" // OCI manifest, one gzip layer (umoci)
  | "busybox-zstd" // same files, one zstd layer
  | "busybox-uncompressed" // same files, one plain tar layer
  | "busybox-v2s2" // Docker schema 2 manifest, Docker gzip layer type
  | "debian" // debootstrap --variant=minbase bookworm, one gzip layer
  | "layers" // three layers: whiteouts, opaque dir, hard links, long names, xattrs, setuid ...
  | "multiplatform" // OCI index: linux/amd64 (busybox), linux/arm64/v8 (marker), attestation
  | "multiplatform-v2s2" // Docker manifest list: linux/amd64 + linux/arm64/v8
  | `malicious-${MaliciousCaseName}`;

export const MALICIOUS_CASES = [
  "dotdot",
  "absolute",
  "symlink-dir",
  "symlink-chain",
  "symlink-layer",
  "hardlink-out",
  "whiteout-dotdot",
  "whiteout-outside",
] as const;
export type MaliciousCaseName = typeof MALICIOUS_CASES[number];

/** Where an image lives locally, as skopeo names it. */
export interface ImageSource {
  transport: "oci" | "dir";
  path: string;
  /** The tag inside an OCI layout ("" for dir:). */
  tag: string;
  /** skopeo's name for it: `oci:PATH:TAG` or `dir:PATH`. */
  ref: string;
  /** True when the source is an index / manifest list (push with --all). */
  list: boolean;
}

let recipeDirPromise: Promise<string> | undefined;
/**
 * The cache folder of the current recipes, named after a hash of this file and ocitool.py.
 * Folders of other recipes not modified for a day are removed.
 */
function recipeDir(): Promise<string> {
  return recipeDirPromise ??= (async () => {
    const self = await Deno.readFile(new URL(import.meta.url));
    const tool = await Deno.readFile(OCITOOL);
    const both = new Uint8Array(self.length + tool.length);
    both.set(self);
    both.set(tool, self.length);
    const name = `recipe-${(await sha256Hex(both)).slice(0, 12)}`;
    const d = `${REGISTRY_CACHE}/${name}`;
    await Deno.mkdir(d, { recursive: true });
    for await (const e of Deno.readDir(REGISTRY_CACHE)) {
      if (!/^(recipe|r\d+)-[0-9a-f]{12}$/.test(e.name) || e.name === name) continue;
      const st = await Deno.stat(`${REGISTRY_CACHE}/${e.name}`).catch(() => null);
      if (st?.mtime && Date.now() - st.mtime.getTime() > 86_400_000) {
        await Deno.remove(`${REGISTRY_CACHE}/${e.name}`, { recursive: true }).catch(() => {});
      }
    }
    return d;
  })();
}

const building = new Map<string, Promise<string>>();

/**
 * Builds `name` once: into a fresh temporary folder next to the final one, renamed into
 * place when complete, so an interrupted build leaves nothing that looks finished and
 * concurrent builders (other test processes) do not clash. Returns the final path.
 */
function cached(name: string, build: (tmp: string) => Promise<void>, base?: string): Promise<string> {
  const key = `${base ?? ""}|${name}`;
  let p = building.get(key);
  if (!p) {
    p = (async () => {
      const root = base ?? await recipeDir();
      await Deno.mkdir(root, { recursive: true });
      const final = `${root}/${name}`;
      if (exists(final)) return final;
      const tmp = await Deno.makeTempDir({ dir: root, prefix: `.${name}.tmp-` });
      try {
        await build(tmp);
        await Deno.rename(tmp, final);
      } catch (e) {
        await Deno.remove(tmp, { recursive: true }).catch(() => {});
        if (exists(final)) return final; // another process won the race
        throw e;
      }
      return final;
    })();
    building.set(key, p);
    p.catch(() => building.delete(key));
  }
  return p;
}

async function umoci(...args: string[]): Promise<void> {
  await run("umoci", args);
}

async function skopeo(...args: string[]): Promise<void> {
  await run("skopeo", ["--insecure-policy", ...args]);
}

let python: Promise<string> | undefined;
/** Debian's /usr/bin/python3 when present (starts faster than a pyenv shim), else python3 from PATH. */
export function pythonCommand(): Promise<string> {
  return python ??= Promise.resolve(exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
}

async function ocitool(...args: string[]): Promise<void> {
  await run(await pythonCommand(), [OCITOOL, ...args]);
}

const IMAGE_TOOLS = { umoci: "umoci", skopeo: "skopeo", python3: "python3" };
const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Adds one layer to LAYOUT:TAG the way umoci is meant to be used: `umoci unpack` into a
 * bundle, `fill` changes bundle/rootfs with ordinary file-system calls, `umoci repack`
 * writes the difference as a gzip layer (new and changed files; deletions as `.wh.` files).
 *
 * Not `umoci insert`: umoci 0.4.7's insert never finishes its tar stream. Its layers lack
 * the two end-of-archive blocks, and when the last entry is a file with data they also lack
 * that file's padding (a truncated tar that GNU tar and Python's tarfile reject). repack
 * writes complete tars; `ocitool.py verify` checks every layer we build.
 */
async function umociLayer(
  image: string,
  work: string,
  createdBy: string,
  fill: (rootfs: string) => Promise<void>,
): Promise<void> {
  const bundle = `${work}/bundle`;
  await umoci("unpack", "--image", image, bundle);
  await fill(`${bundle}/rootfs`);
  await umoci("repack", "--image", image, "--history.created_by", createdBy, bundle);
  await Deno.remove(bundle, { recursive: true });
}

/**
 * busybox: the host's static /bin/busybox at /bin/busybox, one absolute symlink per applet
 * at the path `busybox --list-full` gives (bin/sh -> /bin/busybox, usr/bin/awk -> ...),
 * /etc/passwd and /etc/group with root, empty /dev /proc /sys, /root mode 0700, /tmp mode
 * 1777. `umoci init; umoci new`, one umociLayer, `umoci config --config.cmd sh`:
 * one gzip layer, OCI manifest, tag "latest".
 */
function busyboxLayout(): Promise<string> {
  return cached("busybox.oci", async (tmp) => {
    await requireCommands({ ...IMAGE_TOOLS, busybox: "busybox-static" });
    const layout = `${tmp}/layout`;
    await umoci("init", "--layout", layout);
    await umoci("new", "--image", `${layout}:latest`);
    await umociLayer(`${layout}:latest`, tmp, "busybox tree", async (src) => {
      for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "root", "tmp"]) {
        await Deno.mkdir(`${src}/${d}`, { recursive: true });
      }
      await Deno.chmod(`${src}/tmp`, 0o1777);
      await Deno.chmod(`${src}/root`, 0o700);
      await Deno.copyFile("/bin/busybox", `${src}/bin/busybox`);
      await Deno.chmod(`${src}/bin/busybox`, 0o755);
      const list = (await run("/bin/busybox", ["--list-full"])).stdout.split("\n").filter(Boolean);
      for (const applet of list) {
        if (applet === "bin/busybox") continue;
        await Deno.symlink("/bin/busybox", `${src}/${applet}`);
      }
      await Deno.writeTextFile(`${src}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
      await Deno.writeTextFile(`${src}/etc/group`, "root:x:0:\n");
    });
    await umoci("config", "--image", `${layout}:latest`, "--config.cmd", "sh", "--config.env", PATH_ENV);
    await umoci("gc", "--layout", layout);
    await ocitool("verify", layout, "latest");
    // The cache entry is the layout folder itself.
    await moveLayoutUp(tmp, layout);
  });
}

/** Moves the contents of tmp/layout into tmp itself (a cache entry is one layout folder). */
async function moveLayoutUp(tmp: string, layout: string): Promise<void> {
  for await (const e of Deno.readDir(layout)) await Deno.rename(`${layout}/${e.name}`, `${tmp}/${e.name}`);
  await Deno.remove(layout);
}

/** busybox with its layer decompressed: a dir: copy (skopeo --dest-decompress), the source of the variants. */
function busyboxPlainDir(): Promise<string> {
  return cached("busybox-plain.dir", async (tmp) => {
    const bb = await busyboxLayout();
    await Deno.remove(tmp);
    await skopeo("copy", "-q", "--dest-decompress", `oci:${bb}:latest`, `dir:${tmp}`);
  });
}

/**
 * busybox-zstd: `skopeo copy --dest-compress-format zstd dir:<plain> oci:<layout>:latest`.
 * (skopeo 1.9 does not recompress gzip to zstd on the way to a registry, so the variant is
 * made from the decompressed copy and pushed byte for byte with --preserve-digests.)
 */
function busyboxZstdLayout(): Promise<string> {
  return cached("busybox-zstd.oci", async (tmp) => {
    const plain = await busyboxPlainDir();
    await skopeo("copy", "-q", "--dest-compress-format", "zstd", `dir:${plain}`, `oci:${tmp}:latest`);
    await ocitool("verify", tmp, "latest");
  });
}

/** busybox-uncompressed: `skopeo copy --dest-oci-accept-uncompressed-layers dir:<plain> oci:...`. */
function busyboxUncompressedLayout(): Promise<string> {
  return cached("busybox-uncompressed.oci", async (tmp) => {
    const plain = await busyboxPlainDir();
    await skopeo("copy", "-q", "--dest-oci-accept-uncompressed-layers", `dir:${plain}`, `oci:${tmp}:latest`);
    await ocitool("verify", tmp, "latest");
  });
}

/** busybox-v2s2: `skopeo copy --format v2s2 oci:<busybox>:latest dir:...` (Docker schema 2, Docker media types). */
function busyboxV2s2Dir(): Promise<string> {
  return cached("busybox-v2s2.dir", async (tmp) => {
    const bb = await busyboxLayout();
    await Deno.remove(tmp);
    await skopeo("copy", "-q", "--format", "v2s2", `oci:${bb}:latest`, `dir:${tmp}`);
  });
}

/** The Debian rootfs: a cached one if present (read-only use), else debootstrap into the cache. */
async function debianRootfs(): Promise<string> {
  const candidates = [
    `${TEST_CACHE_ROOT}/rootfs/debian`,
    `${TEST_CACHE_ROOT}/debian`,
    "/var/tmp/gcr-test/rootfs/debian",
    "/var/tmp/gcr-test/debian",
  ];
  for (const c of candidates) {
    if (exists(`${c}/etc/debian_version`) && exists(`${c}/usr/bin/apt-get`)) return c;
  }
  return await cached("debian-rootfs", async (tmp) => {
    await requireCommands({ debootstrap: "debootstrap" });
    await run("debootstrap", ["--variant=minbase", "bookworm", tmp, DEBIAN_MIRROR]);
  }, REGISTRY_CACHE);
}

/**
 * debian: the debootstrap --variant=minbase bookworm tree as one gzip layer:
 * `umoci new`, umociLayer filled with `cp -a <rootfs>/. rootfs/`, `umoci config --config.cmd bash`.
 */
function debianLayout(): Promise<string> {
  return cached("debian.oci", async (tmp) => {
    await requireCommands(IMAGE_TOOLS);
    const rootfs = await debianRootfs();
    const layout = `${tmp}/layout`;
    await umoci("init", "--layout", layout);
    await umoci("new", "--image", `${layout}:latest`);
    await umociLayer(`${layout}:latest`, tmp, "debootstrap --variant=minbase bookworm", async (dest) => {
      await run("cp", ["-a", `${rootfs}/.`, `${dest}/`]);
    });
    await umoci("config", "--image", `${layout}:latest`, "--config.cmd", "bash", "--config.env", PATH_ENV);
    await umoci("gc", "--layout", layout);
    await ocitool("verify", layout, "latest");
    await moveLayoutUp(tmp, layout);
  });
}

/** 150 characters: longer than ustar's 100-byte name field. */
export const LAYERS_LONG_NAME = "long/" + "l".repeat(150);
/** Over 255 characters: longer than ustar's prefix+name (155+100). */
export const LAYERS_DEEP_PATH = "deep/" + [1, 2, 3, 4, 5].map((i) => `d${i}`.repeat(30)).join("/") + "/file";
/** The GNU ('L' record) long name of layer 3 (ocitool.py GNU_LONG_NAME). */
export const LAYERS_GNU_LONG_NAME = "gnu-long/" + "g".repeat(120) + ".txt";
export const LAYERS_DIR_MTIME = "2001-02-03T04:05:06Z";

/**
 * The "layers" image, three gzip layers:
 *  1. umociLayer on an empty image, the tree made with real file-system calls (bash below):
 *     etc/l1file, etc/hello + hard link etc/hello-hardlink, replaced (overwritten in 2),
 *     gone-file and gone-dir/{a,sub/b} (whited out in 2), opq/{old1,sub/old2} (hidden by the
 *     opaque dir of 3), xattr-file with user.test=hello and security.capability
 *     (cap_net_raw+ep via setcap), setuid-file mode 04755, symlink -> etc/hello,
 *     abs-symlink -> /etc/hello, fifo, mtime-dir (mtime 2001-02-03T04:05:06Z) with a file,
 *     tmp mode 1777, an empty dir, a 150-character file name and a 300+-character path (PAX
 *     headers).
 *  2. umociLayer: rm gone-file, rm -r gone-dir, overwrite `replaced`, add l2-added; umoci
 *     repack records the deletions as `.wh.gone-file` and `.wh.gone-dir`.
 *  3. ocitool.py layers-extra (python tarfile, GNU format) appended with `ocitool.py append`:
 *     opq/new, then opq/.wh..wh..opq (after a file of its own directory), hard links
 *     etc/l1-hardlink -> etc/l1file and etc/l1-abs-hardlink -> /etc/l1file (targets in layer
 *     1), a GNU long name, `owned` (uid 1234, gid 5678, mode 0640), `devnull` (char 1:3).
 *     Made by hand because umoci 0.4.7 cannot: repack stores a new hard link to an unchanged
 *     lower file as a regular file and never writes opaque markers (`insert --opaque` does,
 *     but insert's tars are truncated, see umociLayer).
 */
function layersLayout(): Promise<string> {
  return cached("layers.oci", async (tmp) => {
    await requireCommands({ ...IMAGE_TOOLS, setcap: "libcap2-bin", setfattr: "attr", mkfifo: "coreutils" });
    const script = `
set -euo pipefail
cd "$1"
mkdir -p etc gone-dir/sub opq/sub mtime-dir tmp empty-dir
printf 'layer one file\\n' > etc/l1file
printf 'hello\\n' > etc/hello
ln etc/hello etc/hello-hardlink
printf 'layer one\\n' > replaced
printf 'to be whited out\\n' > gone-file
printf 'a\\n' > gone-dir/a
printf 'b\\n' > gone-dir/sub/b
printf 'old1\\n' > opq/old1
printf 'old2\\n' > opq/sub/old2
printf 'xattrs\\n' > xattr-file
setfattr -n user.test -v hello xattr-file
setcap cap_net_raw+ep xattr-file
printf '#!/bin/sh\\necho setuid\\n' > setuid-file
chmod 04755 setuid-file
ln -s etc/hello symlink
ln -s /etc/hello abs-symlink
mkfifo fifo
chmod 1777 tmp
mkdir -p "$(dirname "$2")" "$(dirname "$3")"
printf 'long name\\n' > "$2"
printf 'deep path\\n' > "$3"
printf 'in mtime-dir\\n' > mtime-dir/file
touch -d "$4" mtime-dir
`;
    const layout = `${tmp}/layout`;
    const image = `${layout}:latest`;
    await umoci("init", "--layout", layout);
    await umoci("new", "--image", image);
    await umociLayer(image, tmp, "layer 1: umoci repack of a new tree", async (rootfs) => {
      await run("bash", ["-c", script, "bash", rootfs, LAYERS_LONG_NAME, LAYERS_DEEP_PATH, LAYERS_DIR_MTIME]);
    });
    await umociLayer(image, tmp, "layer 2: umoci repack after deletions (whiteouts)", async (rootfs) => {
      await Deno.remove(`${rootfs}/gone-file`);
      await Deno.remove(`${rootfs}/gone-dir`, { recursive: true });
      await Deno.writeTextFile(`${rootfs}/replaced`, "layer two\n");
      await Deno.writeTextFile(`${rootfs}/l2-added`, "added in layer 2\n");
    });
    await ocitool("layers-extra", `${tmp}/layer3.tar`);
    await ocitool("append", layout, "latest", `${tmp}/layer3.tar:gzip`, "--created-by", "layer 3: ocitool.py");
    await Deno.remove(`${tmp}/layer3.tar`);
    await umoci("gc", "--layout", layout);
    await ocitool("verify", layout, "latest");
    await moveLayoutUp(tmp, layout);
  });
}

/**
 * multiplatform, one OCI layout with tags:
 *   amd64   the busybox image (copied with skopeo, digests preserved)
 *   arm64   umoci new + umociLayer with etc/gcr-platform ("linux/arm64\n") + umoci config
 *           --architecture arm64 --os linux (no variant: umoci 0.4.7 cannot set one)
 *   latest  OCI index (ocitool.py index): amd64, arm64 and an attestation manifest for amd64
 *           (platform unknown/unknown, vnd.docker.reference.type=attestation-manifest,
 *           one application/vnd.in-toto+json layer)
 *   noatt   OCI index of amd64 + arm64 only (source of the Docker manifest list)
 */
function multiplatformLayout(): Promise<string> {
  return cached("multiplatform.oci", async (tmp) => {
    const bb = await busyboxLayout();
    await skopeo("copy", "-q", "--preserve-digests", `oci:${bb}:latest`, `oci:${tmp}:amd64`);
    await umoci("new", "--image", `${tmp}:arm64`);
    const work = await Deno.makeTempDir({ prefix: "gcr-arm64-" });
    try {
      await umociLayer(`${tmp}:arm64`, work, "arm64 marker", async (rootfs) => {
        await Deno.mkdir(`${rootfs}/etc`);
        await Deno.writeTextFile(`${rootfs}/etc/gcr-platform`, "linux/arm64\n");
      });
    } finally {
      await Deno.remove(work, { recursive: true });
    }
    await umoci("config", "--image", `${tmp}:arm64`, "--architecture", "arm64", "--os", "linux");
    await ocitool("index", tmp, "latest", "--entry", "amd64", "--entry", "arm64", "--attestation-for", "amd64");
    await ocitool("index", tmp, "noatt", "--entry", "amd64", "--entry", "arm64");
    await umoci("gc", "--layout", tmp);
    for (const tag of ["latest", "noatt"]) await ocitool("verify", tmp, tag);
  });
}

/** multiplatform-v2s2: `skopeo copy --all --format v2s2 oci:<multiplatform>:noatt dir:...`. */
function multiplatformV2s2Dir(): Promise<string> {
  return cached("multiplatform-v2s2.dir", async (tmp) => {
    const m = await multiplatformLayout();
    await Deno.remove(tmp);
    await skopeo("copy", "-q", "--all", "--format", "v2s2", `oci:${m}:noatt`, `dir:${tmp}`);
  });
}

export interface MaliciousCase {
  name: MaliciousCaseName;
  /** What the layer tries, and what a safe extractor must not do. */
  description: string;
  /** Plain tar files, one per layer, in order (uncompressed, written by ocitool.py). */
  tars: string[];
  /** The kind to give pushImage for the image made of these layers. */
  kind: ImageKind;
}

const MALICIOUS_DESCRIPTIONS: Record<MaliciousCaseName, string> = {
  "dotdot": "regular file ../gcr-escape-dotdot (and a harmless ./ok)",
  "absolute": "regular file /tmp/gcr-escape-absolute (absolute name: must land at <out>/tmp/... or be refused)",
  "symlink-dir": "symlink evil -> /tmp, then regular file evil/gcr-escape-symlink",
  "symlink-chain": "symlinks a -> b, b -> ../../../../../../../../tmp, then regular file a/gcr-escape-chain",
  "symlink-layer": "layer 1: symlink evil -> /tmp; layer 2: regular file evil/gcr-escape-layer",
  "hardlink-out":
    "hard links pw-abs -> /etc/passwd (means <out>/etc/passwd, absent) and pw-rel -> ../../(x8)etc/passwd",
  "whiteout-dotdot": "dir sub/, whiteouts sub/.wh... and .wh... (each names a parent '..')",
  "whiteout-outside": "whiteout ../.wh.gcr-escape-victim (would remove <out>/../gcr-escape-victim)",
};

function maliciousDir(): Promise<string> {
  return cached("malicious", async (tmp) => {
    await requireCommands(IMAGE_TOOLS);
    await ocitool("malicious", `${tmp}/tars`);
    const cases = JSON.parse(await Deno.readTextFile(`${tmp}/tars/cases.json`)) as Record<string, string[]>;
    for (const [name, tars] of Object.entries(cases)) {
      await ocitool("image", `${tmp}/layout`, name, ...tars.flatMap((t) => ["--layer", `${tmp}/tars/${t}:gzip`]));
      await ocitool("verify", `${tmp}/layout`, name);
    }
  });
}

/**
 * The malicious layers, as plain tar files and as images (kind `malicious-<name>`).
 * Every name that would land outside the output starts with "gcr-escape" (and the symlink
 * cases point at /tmp), so a broken extractor leaves a findable marker rather than
 * overwriting a host file. To detect the whiteout cases, put a file named
 * gcr-escape-victim next to the output folder and nest the output two levels inside a
 * temporary folder (".wh..." names the output's parent).
 */
export async function maliciousLayers(): Promise<MaliciousCase[]> {
  const dir = await maliciousDir();
  const cases = JSON.parse(await Deno.readTextFile(`${dir}/tars/cases.json`)) as Record<string, string[]>;
  return MALICIOUS_CASES.map((name) => ({
    name,
    description: MALICIOUS_DESCRIPTIONS[name],
    tars: (cases[name] ?? []).map((t) => `${dir}/tars/${t}`),
    kind: `malicious-${name}` as ImageKind,
  }));
}

/** Builds (or finds in the cache) the local source of an image kind. */
export async function imageSource(kind: ImageKind): Promise<ImageSource> {
  const oci = (path: string, tag = "latest", list = false): ImageSource => ({
    transport: "oci",
    path,
    tag,
    ref: `oci:${path}:${tag}`,
    list,
  });
  const dir = (path: string, list = false): ImageSource => ({
    transport: "dir",
    path,
    tag: "",
    ref: `dir:${path}`,
    list,
  });
  await requireCommands(IMAGE_TOOLS);
  switch (kind) {
    case "busybox":
      return oci(await busyboxLayout());
    case "busybox-zstd":
      return oci(await busyboxZstdLayout());
    case "busybox-uncompressed":
      return oci(await busyboxUncompressedLayout());
    case "busybox-v2s2":
      return dir(await busyboxV2s2Dir());
    case "debian":
      return oci(await debianLayout());
    case "layers":
      return oci(await layersLayout());
    case "multiplatform":
      return oci(await multiplatformLayout(), "latest", true);
    case "multiplatform-v2s2":
      return dir(await multiplatformV2s2Dir(), true);
  }
  const m = kind.match(/^malicious-(.+)$/);
  if (m?.[1] && (MALICIOUS_CASES as readonly string[]).includes(m[1])) {
    return oci(`${await maliciousDir()}/layout`, m[1]);
  }
  throw new Error(`unknown image kind ${kind}`);
}

/** The cached OCI layout of an image kind, for `gcr pull oci:PATH:TAG` (read-only). */
export async function ociLayout(kind: ImageKind = "busybox"): Promise<{ path: string; tag: string; ref: string }> {
  const src = await imageSource(kind);
  if (src.transport !== "oci") throw new Error(`${kind} is kept as a dir: copy, not an OCI layout`);
  return { path: src.path, tag: src.tag, ref: src.ref };
}

/**
 * A `docker save`-style archive of an image kind (skopeo copy ... docker-archive:FILE:NAME),
 * for `gcr pull docker-archive:FILE`. The archive's repo tag, as skopeo writes it, is
 * `docker.io/gcr-test/<kind>:latest` (`docker save` would write `gcr-test/<kind>:latest`).
 */
export async function dockerArchive(kind: ImageKind = "busybox"): Promise<{ path: string; repoTag: string }> {
  const src = await imageSource(kind);
  if (src.list) throw new Error("docker-archive holds single images only");
  const repoTag = `docker.io/gcr-test/${kind}:latest`;
  const dir = await cached(`${kind}.docker-archive`, async (tmp) => {
    await skopeo("copy", "-q", src.ref, `docker-archive:${tmp}/image.tar:gcr-test/${kind}:latest`);
  });
  return { path: `${dir}/image.tar`, repoTag };
}

/**
 * Unpacks an image kind with `umoci unpack` into `dest/rootfs` (dest must not exist):
 * an independent reference to compare gcr's extraction against. Only for OCI layouts.
 */
export async function referenceUnpack(kind: ImageKind, dest: string): Promise<string> {
  const src = await ociLayout(kind);
  await run("umoci", ["unpack", "--image", `${src.path}:${src.tag}`, dest]);
  return `${dest}/rootfs`;
}

// ---------------------------------------------------------------- pushing

export interface PushedImage {
  /** "127.0.0.1:PORT/NAME:TAG" */
  ref: string;
  name: string;
  tag: string;
  /** Digest of the manifest (or index) as pushed. */
  digest: string;
  kind: ImageKind;
  source: ImageSource;
}

/**
 * Pushes an image kind to `registry` as NAME:TAG (tag default "latest") with
 * `skopeo copy [--all] --preserve-digests SRC docker://127.0.0.1:PORT/NAME:TAG`, credentials
 * from the registry when it has auth. --preserve-digests makes the registry hold exactly the
 * bytes of the cached source (without it skopeo may swap in a differently compressed blob it
 * remembers from an earlier push).
 */
export async function pushImage(
  registry: Pick<Registry, "url" | "username" | "password" | "auth">,
  name: string,
  what: ImageKind,
  opts: { tag?: string } = {},
): Promise<PushedImage> {
  const src = await imageSource(what);
  const tag = opts.tag ?? "latest";
  const ref = `${registry.url}/${name}:${tag}`;
  const digestDir = await Deno.makeTempDir({ prefix: "gcr-push-" });
  try {
    const args = ["copy", "-q", "--preserve-digests", "--dest-tls-verify=false", "--digestfile", `${digestDir}/digest`];
    if (src.list) args.push("--all");
    if (registry.auth !== "none") args.push("--dest-creds", `${registry.username}:${registry.password}`);
    await skopeo(...args, src.ref, `docker://${ref}`);
    const digest = (await Deno.readTextFile(`${digestDir}/digest`)).trim();
    return { ref, name, tag, digest, kind: what, source: src };
  } finally {
    await Deno.remove(digestDir, { recursive: true });
  }
}

/** Builds every artifact (debian too, unless told not to): warms the cache before timing-sensitive tests. */
export async function buildAll(opts: { debian?: boolean } = {}): Promise<void> {
  const kinds: ImageKind[] = [
    "busybox",
    "busybox-zstd",
    "busybox-uncompressed",
    "busybox-v2s2",
    "layers",
    "multiplatform",
    "multiplatform-v2s2",
  ];
  if (opts.debian ?? true) kinds.push("debian");
  for (const k of kinds) await imageSource(k);
  await maliciousLayers();
  await dockerArchive("busybox");
}

// ---------------------------------------------------------------- fault-injecting proxy

export type Fault =
  | { mode: "none" }
  /**
   * The first `times` (default 1) non-Range GETs of each blob send `bytes` bytes (default half), wait
   * `holdMs` (default 0), then close. With `ignoreRange`, blob GETs reach the registry without their
   * Range header, so a resume gets the whole blob again (200), as from a server without Range support.
   */
  | { mode: "cut-blob"; bytes?: number; times?: number; digest?: string; holdMs?: number; ignoreRange?: boolean }
  /** Every blob GET has the byte at `offset` (default the middle) flipped. */
  | { mode: "corrupt-blob"; offset?: number; digest?: string }
  /** The first request to each path matching `paths` (default every path) gets 429 + Retry-After. */
  | { mode: "rate-limit"; retryAfter?: number; paths?: RegExp }
  /** The first `times` (default 1) requests to each path matching `paths` get `status` (default 503). */
  | { mode: "server-error"; status?: number; times?: number; paths?: RegExp; retryAfter?: number }
  /** Every blob GET is held back `delayMs` (default 300) before it is forwarded; counts concurrency. */
  | { mode: "slow-blob"; delayMs?: number }
  /** Blob GETs answer 307 to a second server on `host` (default 127.0.0.2) that serves the blob. */
  | { mode: "redirect-blob"; host?: string; status?: 301 | 302 | 303 | 307 | 308 };

export interface ProxyRequest {
  /** Seconds since the proxy started. */
  at: number;
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
  /** The status the proxy answered with. */
  status: number;
  /** What the proxy did: "forward", "cut", "corrupt", "rate-limit", "server-error", "slow", "redirect". */
  action: string;
}

export interface SecondHostRequest {
  at: number;
  method: string;
  path: string;
  range: string | null;
  /** The Authorization header that arrived at the second host, or null. */
  authorization: string | null;
  status: number;
}

export interface ProxyStats {
  requests: ProxyRequest[];
  cuts: number;
  corrupted: number;
  rateLimited: number;
  serverErrors: number;
  redirects: number;
  /** slow-blob: blob GETs being held or forwarded right now, and the most at once. */
  blobsInFlight: number;
  maxBlobsInFlight: number;
  /** Requests the redirect target (second host) received. */
  secondHost: SecondHostRequest[];
}

export interface FaultyProxy {
  /** "127.0.0.1:PORT": use it as the registry host in references. */
  url: string;
  host: string;
  port: number;
  /** For redirect-blob: "127.0.0.2:PORT" of the second host. */
  secondHostUrl?: string;
  stats: ProxyStats;
  /** The number of Authorization headers the second host saw. */
  secondHostAuthorizations(): number;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const BLOB_PATH = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Copies a request's headers for forwarding: drops hop-by-hop ones and Host. */
function forwardHeaders(req: Request, proxyHost: string): Headers {
  const h = new Headers();
  for (const [k, v] of req.headers) {
    if (["host", "connection", "keep-alive", "transfer-encoding", "accept-encoding", "content-length"].includes(k)) {
      continue;
    }
    h.set(k, v);
  }
  h.set("accept-encoding", "identity");
  // distribution builds Location URLs from these, so uploads come back through the proxy.
  h.set("x-forwarded-host", proxyHost);
  h.set("x-forwarded-proto", "http");
  return h;
}

function responseHeaders(res: Response): Headers {
  const h = new Headers();
  for (const [k, v] of res.headers) {
    if (["connection", "keep-alive", "transfer-encoding", "content-encoding"].includes(k)) continue;
    h.set(k, v);
  }
  return h;
}

function parseContentRangeStart(h: string | null): number {
  const m = h?.match(/^bytes (\d+)-/);
  return m?.[1] ? Number(m[1]) : 0;
}

/**
 * An HTTP proxy on a free 127.0.0.1 port in front of `upstream` (a Registry or
 * "127.0.0.1:PORT") that injects one fault. Everything that the fault does not touch is
 * forwarded unchanged (method, headers, body, status, redirects not followed), so the
 * registry's auth flow (401 + WWW-Authenticate, tokens, basic auth) works through it.
 */
export function startFaultyProxy(upstream: string | Pick<Registry, "url">, fault: Fault): Promise<FaultyProxy> {
  const upstreamUrl = typeof upstream === "string" ? upstream : upstream.url;
  const base = `http://${upstreamUrl}`;
  const started = performance.now();
  const now = () => (performance.now() - started) / 1000;
  const stats: ProxyStats = {
    requests: [],
    cuts: 0,
    corrupted: 0,
    rateLimited: 0,
    serverErrors: 0,
    redirects: 0,
    blobsInFlight: 0,
    maxBlobsInFlight: 0,
    secondHost: [],
  };
  const seenPaths = new Map<string, number>();
  const cutPaths = new Map<string, number>();
  const ac = new AbortController();
  let proxyHost = "";
  let second: Deno.HttpServer<Deno.NetAddr> | undefined;
  const secondBlobs = new Map<string, { body: Uint8Array; headers: Headers }>();

  const upstreamFetch = (req: Request, path: string, drop: string[] = []) => {
    const headers = forwardHeaders(req, proxyHost);
    for (const k of drop) headers.delete(k);
    return fetch(`${base}${path}`, {
      method: req.method,
      headers,
      body: req.body,
      redirect: "manual",
    });
  };

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname + url.search;
    const record: ProxyRequest = {
      at: now(),
      method: req.method,
      path,
      range: req.headers.get("range"),
      authorization: req.headers.get("authorization"),
      status: 0,
      action: "forward",
    };
    stats.requests.push(record);
    const count = (seenPaths.get(url.pathname) ?? 0) + 1;
    seenPaths.set(url.pathname, count);
    const blob = req.method === "GET" ? url.pathname.match(BLOB_PATH) : null;
    const digestOk = (d?: string) => !d || blob?.[2] === d;

    if (fault.mode === "rate-limit" && count === 1 && (fault.paths ?? /./).test(url.pathname)) {
      stats.rateLimited++;
      record.status = 429;
      record.action = "rate-limit";
      await req.body?.cancel();
      return Response.json(
        { errors: [{ code: "TOOMANYREQUESTS", message: "gcr-test: rate limited, retry later" }] },
        { status: 429, headers: { "retry-after": String(fault.retryAfter ?? 1) } },
      );
    }

    if (fault.mode === "server-error" && count <= (fault.times ?? 1) && (fault.paths ?? /./).test(url.pathname)) {
      stats.serverErrors++;
      record.status = fault.status ?? 503;
      record.action = "server-error";
      await req.body?.cancel();
      const headers: Record<string, string> = {};
      if (fault.retryAfter !== undefined) headers["retry-after"] = String(fault.retryAfter);
      return Response.json(
        { errors: [{ code: "UNAVAILABLE", message: "gcr-test: injected server error" }] },
        { status: record.status, headers },
      );
    }

    if (blob && fault.mode === "redirect-blob" && second) {
      // Fetch the whole blob from the registry with the client's own credentials, park it at
      // the second host (which serves Range requests itself), and send the client there.
      const res = await upstreamFetch(req, url.pathname, ["range"]);
      if (res.status !== 200) {
        record.status = res.status;
        return new Response(res.body, { status: res.status, headers: responseHeaders(res) });
      }
      const body = new Uint8Array(await res.arrayBuffer());
      const headers = new Headers();
      for (const k of ["content-type", "docker-content-digest", "etag"]) {
        const v = res.headers.get(k);
        if (v) headers.set(k, v);
      }
      secondBlobs.set(blob[2]!, { body, headers });
      stats.redirects++;
      record.action = "redirect";
      record.status = fault.status ?? 307;
      const location = `http://${second.addr.hostname}:${second.addr.port}/blobs/${blob[2]}`;
      return new Response(null, { status: record.status, headers: { location, "content-length": "0" } });
    }

    if (blob && fault.mode === "slow-blob") {
      stats.maxBlobsInFlight = Math.max(stats.maxBlobsInFlight, ++stats.blobsInFlight);
      record.action = "slow";
      try {
        await sleep(fault.delayMs ?? 300);
        const res = await upstreamFetch(req, path);
        record.status = res.status;
        return new Response(res.body, { status: res.status, headers: responseHeaders(res) });
      } finally {
        stats.blobsInFlight--;
      }
    }

    const res = await upstreamFetch(req, path, blob && fault.mode === "cut-blob" && fault.ignoreRange ? ["range"] : []);
    record.status = res.status;
    const headers = responseHeaders(res);

    if (
      blob && fault.mode === "cut-blob" && res.status === 200 && !req.headers.get("range") &&
      digestOk(fault.digest) && (cutPaths.get(url.pathname) ?? 0) < (fault.times ?? 1) && res.body
    ) {
      const total = Number(res.headers.get("content-length") ?? "0");
      const limit = Math.max(0, Math.min(fault.bytes ?? Math.floor(total / 2), total - 1));
      cutPaths.set(url.pathname, (cutPaths.get(url.pathname) ?? 0) + 1);
      stats.cuts++;
      record.action = "cut";
      const reader = res.body.getReader();
      let sent = 0;
      // Sends `limit` bytes under the full Content-Length, then ends: the client sees the
      // connection close short of the promised length.
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (sent >= limit) {
            if (fault.holdMs) await sleep(fault.holdMs);
            await reader.cancel();
            c.close();
            return;
          }
          const { done, value } = await reader.read();
          if (done) {
            c.close();
            return;
          }
          const part = value.subarray(0, limit - sent);
          sent += part.length;
          c.enqueue(part);
        },
        async cancel() {
          await reader.cancel();
        },
      });
      return new Response(body, { status: 200, headers });
    }

    if (blob && fault.mode === "corrupt-blob" && (res.status === 200 || res.status === 206) && digestOk(fault.digest)) {
      const body = new Uint8Array(await res.arrayBuffer());
      const start = res.status === 206 ? parseContentRangeStart(res.headers.get("content-range")) : 0;
      const total = res.status === 206 ? Number(res.headers.get("content-range")?.split("/")[1] ?? "0") : body.length;
      const offset = fault.offset ?? Math.floor(total / 2);
      if (offset >= start && offset < start + body.length) {
        body[offset - start] = body[offset - start]! ^ 0xff;
        stats.corrupted++;
        record.action = "corrupt";
      }
      return new Response(body, { status: res.status, headers });
    }

    return new Response(req.method === "HEAD" ? null : res.body, { status: res.status, headers });
  };

  const secondHandler = (req: Request): Response => {
    const url = new URL(req.url);
    const rec: SecondHostRequest = {
      at: now(),
      method: req.method,
      path: url.pathname + url.search,
      range: req.headers.get("range"),
      authorization: req.headers.get("authorization"),
      status: 200,
    };
    stats.secondHost.push(rec);
    const m = url.pathname.match(/^\/blobs\/(.+)$/);
    const blob = m?.[1] ? secondBlobs.get(m[1]) : undefined;
    if (!blob || (req.method !== "GET" && req.method !== "HEAD")) {
      rec.status = 404;
      return new Response("not found\n", { status: 404 });
    }
    const headers = new Headers(blob.headers);
    headers.set("accept-ranges", "bytes");
    let body = blob.body;
    const range = req.headers.get("range")?.match(/^bytes=(\d+)-(\d*)$/);
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
      if (start > end) {
        rec.status = 416;
        return new Response(null, { status: 416, headers: { "content-range": `bytes */${body.length}` } });
      }
      headers.set("content-range", `bytes ${start}-${end}/${body.length}`);
      body = body.subarray(start, end + 1);
      rec.status = 206;
    }
    headers.set("content-length", String(body.length));
    return new Response(req.method === "HEAD" ? null : body as Uint8Array<ArrayBuffer>, {
      status: rec.status,
      headers,
    });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} }, handler);
  proxyHost = `127.0.0.1:${server.addr.port}`;
  if (fault.mode === "redirect-blob") {
    second = Deno.serve(
      { hostname: fault.host ?? "127.0.0.2", port: 0, signal: ac.signal, onListen() {} },
      secondHandler,
    );
  }
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      ac.abort();
      await server.finished;
      await second?.finished;
    })();
  return Promise.resolve({
    url: proxyHost,
    host: "127.0.0.1",
    port: server.addr.port,
    secondHostUrl: second ? `${second.addr.hostname}:${second.addr.port}` : undefined,
    stats,
    secondHostAuthorizations: () => stats.secondHost.filter((r) => r.authorization !== null).length,
    stop,
    [Symbol.asyncDispose]: stop,
  });
}
