/**
 * Which ids the container gets, decided from who runs gcr and what the host
 * offers (newuidmap/newgidmap and /etc/subuid, /etc/subgid).
 *
 * @module
 */
import type { IdPlan } from "../steps/plan.ts";
import type { IdMapping } from "../steps/step.ts";
import { readTextOr } from "../host/files.ts";

/** Ids 0..65535 inside, as a typical image expects (nobody is 65534). */
const RANGE = 65536;

/** The first subordinate range of `user` (name or uid) in an /etc/subuid-style file. */
export function subordinateRange(text: string, user: string, id: number): { start: number; count: number } | undefined {
  for (const line of text.split("\n")) {
    const [owner, start, count] = line.trim().split(":");
    if ((owner === user || owner === String(id)) && start && count) {
      return { start: Number(start), count: Number(count) };
    }
  }
  return undefined;
}

function onPath(program: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${program}`).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

function userName(uid: number): string {
  for (const line of readTextOr("/etc/passwd").split("\n")) {
    const [name, , id] = line.split(":");
    if (id === String(uid) && name) return name;
  }
  return Deno.env.get("USER") ?? String(uid);
}

/** How many ids from 0 up this process's user namespace maps (at most RANGE). */
function ownedFromZero(mapFile: string): number {
  const text = readTextOr(mapFile);
  if (!text) return RANGE;
  for (const line of text.split("\n")) {
    const [inside, , count] = line.trim().split(/\s+/).map(Number);
    if (inside === 0 && count) return Math.min(count, RANGE);
  }
  return 1;
}

/**
 * As root: container ids 0..65535 are the same host ids. Rootless with
 * newuidmap/newgidmap and subordinate ranges: 0 is the caller and 1..65535
 * come from the range, so programs can switch users. Otherwise: the single
 * id an unprivileged process may map itself, as the Go original does.
 */
export function planIds(uid = Deno.uid() ?? 0, gid = Deno.gid() ?? 0): IdPlan {
  if (uid === 0) {
    // Root of a nested user namespace may own fewer ids than 65536.
    const identity = (file: string): IdMapping[] => [{ inside: 0, outside: 0, count: ownedFromZero(file) }];
    // A user namespace inherits "deny" from its parent, and cannot undo it.
    const setgroups = readTextOr("/proc/self/setgroups").trim() === "deny" ? "deny" : "allow";
    return {
      uid: identity("/proc/self/uid_map"),
      gid: identity("/proc/self/gid_map"),
      via: "direct",
      setgroups,
      writer: "root",
    };
  }
  const single = (id: number): IdMapping[] => [{ inside: 0, outside: id, count: 1 }];
  const name = userName(uid);
  const subUid = subordinateRange(readTextOr("/etc/subuid"), name, uid);
  const subGid = subordinateRange(readTextOr("/etc/subgid"), name, uid);
  if (subUid && subGid && onPath("newuidmap") && onPath("newgidmap")) {
    const ranged = (id: number, sub: { start: number; count: number }): IdMapping[] => [
      ...single(id),
      { inside: 1, outside: sub.start, count: Math.min(sub.count, RANGE - 1) },
    ];
    return { uid: ranged(uid, subUid), gid: ranged(gid, subGid), via: "helper", setgroups: "allow", writer: "user" };
  }
  return { uid: single(uid), gid: single(gid), via: "direct", setgroups: "deny", writer: "user" };
}
