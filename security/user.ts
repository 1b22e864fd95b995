/**
 * `--user name|uid[:group|gid]`, resolved as Docker (runc's `GetExecUser`)
 * does, against the image's own /etc/passwd and /etc/group, read by gcr
 * before the container starts (the child cannot read files: it may not
 * malloc).
 *
 * ```ts
 * const user = resolveUser("www-data", "/var/lib/rootfs/debian");
 * // { uid: 33, gid: 33, groups: [], home: "/var/www", name: "www-data" }
 * ```
 *
 * @module
 */
import type { ContainerUser } from "../steps/plan.ts";
import { readInRoot } from "../ffi/safe_fs.ts";

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const isId = (text: string) => /^\d+$/.test(text);

function rows(text: string): string[][] {
  return text.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#")).map((line) =>
    line.split(":")
  );
}

/** Entries of an /etc/passwd text; malformed lines are skipped, as libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  return rows(text).filter((f) => f.length >= 7 && isId(f[2]!) && isId(f[3]!)).map((f) => ({
    name: f[0]!,
    uid: Number(f[2]),
    gid: Number(f[3]),
    home: f[5] || "/",
  }));
}

/** Entries of an /etc/group text; malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  return rows(text).filter((f) => f.length >= 4 && isId(f[2]!)).map((f) => ({
    name: f[0]!,
    gid: Number(f[2]),
    members: f[3]!.split(",").map((m) => m.trim()).filter(Boolean),
  }));
}

const MAX_ID = 2 ** 32 - 2; // (uid_t)-1 means "unchanged" to setresuid

function checkedId(text: string, what: string): number {
  const id = Number(text);
  if (id > MAX_ID) throw new Error(`Invalid ${what} ${text}: above ${MAX_ID}`);
  return id;
}

/**
 * Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`, …) with the given
 * passwd and group texts. A name must exist; a number need not (Docker
 * runs an unknown uid with gid 0). Without an explicit group, the primary
 * group is the passwd entry's and the supplementary groups are those that
 * list the user as a member; with one, that group alone.
 */
export function resolveUserIn(spec: string, passwdText: string, groupText: string): ContainerUser {
  const [userPart = "", groupPart, ...extra] = spec.split(":");
  if (userPart === "" || extra.length || groupPart === "") {
    throw new Error(`Invalid --user ${JSON.stringify(spec)}: expected name|uid[:group|gid]`);
  }
  const passwd = parsePasswd(passwdText);
  const entry = isId(userPart)
    ? passwd.find((p) => p.uid === Number(userPart))
    : passwd.find((p) => p.name === userPart);
  if (!entry && !isId(userPart)) throw new Error(`No user ${JSON.stringify(userPart)} in the image's /etc/passwd`);
  const uid = entry?.uid ?? checkedId(userPart, "uid");
  const groups = parseGroup(groupText);
  if (groupPart !== undefined) {
    const group = isId(groupPart)
      ? groups.find((g) => g.gid === Number(groupPart))
      : groups.find((g) => g.name === groupPart);
    if (!group && !isId(groupPart)) throw new Error(`No group ${JSON.stringify(groupPart)} in the image's /etc/group`);
    const gid = group?.gid ?? checkedId(groupPart, "gid");
    return { uid, gid, groups: [], home: entry?.home ?? "/", ...(entry ? { name: entry.name } : {}) };
  }
  const supplementary = entry ? groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid) : [];
  return {
    uid,
    gid: entry?.gid ?? 0,
    groups: [...new Set(supplementary)],
    home: entry?.home ?? "/",
    ...(entry ? { name: entry.name } : {}),
  };
}

/**
 * The environment a container's process execs with: `env`, plus HOME when
 * it has none (or an empty one), from the first /etc/passwd entry for
 * `uid`, else "/". runc does this (setupUser), so engines leave HOME out of
 * config.json: Docker's containers get HOME=/root from it.
 */
export function withHome(env: readonly string[], uid: number, passwd: string | (() => string)): string[] {
  if (env.some((entry) => entry.startsWith("HOME=") && entry.length > "HOME=".length)) return [...env];
  // Read only when needed (podman sets HOME; Docker leaves it to the runtime).
  const passwdText = typeof passwd === "string" ? passwd : passwd();
  const home = parsePasswd(passwdText).find((entry) => entry.uid === uid)?.home ?? "/";
  return [...env.filter((entry) => !entry.startsWith("HOME=")), `HOME=${home}`];
}

/**
 * Resolves `spec` against `<rootfs>/etc/passwd` and `<rootfs>/etc/group`
 * (missing files count as empty), read as the container would read them:
 * their symlinks resolve inside `rootfs` (an image's or `/proc/<pid>/root`),
 * never to the host's files, and only regular files are read.
 */
export function resolveUser(spec: string, rootfs: string): ContainerUser {
  return resolveUserIn(spec, readInRoot(rootfs, "/etc/passwd"), readInRoot(rootfs, "/etc/group"));
}
