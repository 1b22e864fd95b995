/**
 * Whether gcr runs rootless, decided as runc decides it. Rootless podman
 * starts the runtime inside the user namespace it made for the user, where
 * the runtime is uid 0 with every capability of that namespace and none on
 * the host: uid 0 alone does not mean root. runc's rules (rootless_linux.go,
 * main.go):
 *
 *  - cgroups (`--rootless true|false|auto`, `auto` the default): rootless
 *    when the effective uid is not 0, or when it is 0 in a user namespace
 *    that is not the host's (the cgroupfs manager cannot know whether the
 *    cgroup is delegated, so it takes the careful side).
 *  - the state folder: `$XDG_RUNTIME_DIR` is honoured when the effective uid
 *    is not 0, or when it is 0 in a user namespace and `$USER` is not `root`
 *    (conmon passes no `$USER`); the host's root keeps /run.
 *
 * @example
 * ```ts
 * setRootless("auto");
 * if (rootlessCgroups()) console.log("cgroup permission errors are not fatal");
 * ```
 *
 * @module
 */

/** The inode of the host's (the initial) user namespace: PROC_USER_INIT_INO in linux/nsfs.h. */
const INITIAL_USER_NAMESPACE = 0xEFFFFFFD;

/** `--rootless`'s values, as runc takes them. */
export type RootlessSetting = "true" | "false" | "auto";

let setting: RootlessSetting = "auto";
let inNamespace: boolean | undefined;

/**
 * `--rootless`'s value read as runc reads it (parseBoolOrAuto): empty or
 * any case of "auto"; else what Go's strconv.ParseBool takes (1, t, T,
 * TRUE, true, True and their false forms); undefined for anything else.
 */
export function parseRootless(value: string): RootlessSetting | undefined {
  if (value === "" || value.toLowerCase() === "auto") return "auto";
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return "true";
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return "false";
  return undefined;
}

/** Sets `--rootless` (main.ts, from the global options). */
export function setRootless(value: RootlessSetting): void {
  setting = value;
}

/**
 * Whether this process runs in a user namespace other than the host's:
 * `/proc/self/ns/user` names another inode (moby/sys/userns). Without that
 * link (kernels before 3.8), the first line of `/proc/self/uid_map`.
 */
export function inUserNamespace(): boolean {
  inNamespace ??= (() => {
    try {
      const link = Deno.readLinkSync("/proc/self/ns/user");
      return link !== `user:[${INITIAL_USER_NAMESPACE}]`;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) return false;
    }
    try {
      const first = Deno.readTextFileSync("/proc/self/uid_map").split("\n")[0]!.trim();
      return first === "" || first.split(/\s+/).join(" ") !== "0 0 4294967295";
    } catch {
      return false;
    }
  })();
  return inNamespace;
}

/** Whether cgroup permission errors are expected rather than fatal (runc's shouldUseRootlessCgroupManager). */
export function rootlessCgroups(): boolean {
  if (setting !== "auto") return setting === "true";
  return Deno.uid() !== 0 || inUserNamespace();
}

/** Whether the state folder goes under `$XDG_RUNTIME_DIR` rather than /run (runc's shouldHonorXDGRuntimeDir). */
export function honoursXdgRuntimeDir(): boolean {
  if (Deno.uid() !== 0) return true;
  if (!inUserNamespace()) return false;
  return Deno.env.get("USER") !== "root";
}
