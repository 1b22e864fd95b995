import { SYS } from "../ffi/constants.ts";
import { type ContainerUser, type IdPlan } from "./plan.ts";
import { type IdMapping, NULL, num, rawSyscall, shown, type Step } from "./step.ts";

const mapped = (map: readonly IdMapping[], id: number) => map.some((m) => id >= m.inside && id < m.inside + m.count);

/**
 * Switches the container's first process to `--user`: supplementary groups,
 * then gid, then uid, since setting the uid first would take away the
 * CAP_SETGID the other two need. Raw syscalls: glibc's wrappers broadcast
 * the change to threads the child does not have and can hang (SYS).
 *
 * When uid 0 goes, the kernel clears the effective and ambient sets, and
 * the permitted set too unless keep-caps is set (drop-capabilities sets it
 * just before); set-capabilities then gives the process the sets asked for.
 * Those a non-root command execs with are its ambient set alone (none in
 * Docker's shape, as in Docker): the kernel gives an exec of an ordinary
 * program by a non-zero uid no other permitted or effective capability.
 * Goes after drop-capabilities (PR_CAPBSET_DROP needs CAP_SETPCAP, which a
 * non-root uid no longer has), before set-capabilities (which may take
 * away the CAP_SETGID and CAP_SETUID these calls need), no-new-privs and
 * install-seccomp.
 *
 * `ids` is the plan's id plan: ids outside its maps are refused here, with a
 * message, rather than as EINVAL from the child; with setgroups `deny` (a
 * rootless single-id map) the kernel refuses setgroups, so the groups call
 * is left out and supplementary groups are an error.
 */
export function setUser(user: ContainerUser, ids: IdPlan): Step {
  for (const [kind, id, map] of [["uid", user.uid, ids.uid], ["gid", user.gid, ids.gid]] as const) {
    if (!mapped(map, id)) {
      throw new Error(
        `Cannot run as ${kind} ${id}: the container's user namespace maps only ${
          map.map((m) => `${m.inside}-${m.inside + m.count - 1}`).join(", ")
        }`,
      );
    }
  }
  const all3 = (id: number) => [num(id), num(id), num(id)];
  const groups = new Uint8Array(4 * Math.max(user.groups.length, 1));
  user.groups.forEach((gid, i) => new DataView(groups.buffer).setUint32(i * 4, gid, true));
  if (ids.setgroups === "deny" && user.groups.length) {
    throw new Error(
      `Cannot set supplementary groups ${user.groups.join(",")}: setgroups is denied in this user namespace (rootless)`,
    );
  }
  const setgroups = ids.setgroups === "deny" ? [] : [
    user.groups.length
      ? rawSyscall(
        "setgroups",
        SYS.setgroups,
        user.groups.length,
        shown({ bytes: groups }, `{${user.groups.join(", ")}}`),
      )
      : rawSyscall("setgroups", SYS.setgroups, 0, NULL),
  ];
  return {
    name: "set-user",
    why: `the command runs as uid ${user.uid}, gid ${user.gid}${user.name ? ` (${user.name})` : ""}; ` +
      "between drop-capabilities and set-capabilities, while the effective set is still whole",
    parent: [],
    child: [
      ...setgroups,
      rawSyscall("setresgid", SYS.setresgid, ...all3(user.gid)),
      rawSyscall("setresuid", SYS.setresuid, ...all3(user.uid)),
    ],
  };
}

/**
 * For a process that stays uid 0 without groups of its own (no set-user):
 * no supplementary groups, as runc gives every process it starts
 * (setgroups with the user's groups, none here). Otherwise the process
 * would keep gcr's: the engine's, or under rootless podman the user's own.
 * Only where the process's user namespace allows setgroups, and before
 * drop-capabilities (setgroups needs CAP_SETGID).
 */
export function clearGroups(): Step {
  return {
    name: "clear-groups",
    why: "no supplementary groups of gcr's caller reach the container (runc sets them for every process)",
    parent: [],
    child: [rawSyscall("setgroups", SYS.setgroups, 0, NULL)],
  };
}
