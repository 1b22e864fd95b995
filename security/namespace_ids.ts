/**
 * What the kernel shows of a process's user namespace: read when gcr joins
 * or records one (create's record, exec's user), so it sits below the
 * planners that read config.json and the commands that record.
 *
 * @module
 */
import type { IdPlan } from "../steps/plan.ts";

/**
 * The ids of a running process's user namespace as the kernel shows them
 * (/proc/<pid>/uid_map, gid_map, setgroups): what a process joining it can
 * be, whether gcr made that namespace from config.json's mappings, joined
 * one by path, or made none (the host's, `0 0 4294967295`).
 */
export function observedIds(pid: number): IdPlan {
  const maps = (file: string) =>
    Deno.readTextFileSync(`/proc/${pid}/${file}`).trim().split("\n").filter(Boolean).map((line) => {
      const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
      return { inside: inside!, outside: outside!, count: count! };
    });
  const setgroups = Deno.readTextFileSync(`/proc/${pid}/setgroups`).trim() === "deny" ? "deny" : "allow";
  return { uid: maps("uid_map"), gid: maps("gid_map"), via: "direct", setgroups, writer: "root" };
}
