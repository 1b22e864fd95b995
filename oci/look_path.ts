/**
 * The container's command looked up in its root before `gcr create`
 * returns, as runc's init does (Go's exec.LookPath, before it waits for
 * start): a command that is missing or not executable fails create, in
 * runc's words, instead of a container that starts and exits 127 with
 * nothing said. Engines read those words: Docker turns `executable file
 * not found` and `no such file or directory` into exit status 127 and
 * `permission denied` into 126, and prints the message.
 *
 * ```ts
 * lookPathProblem("nonexistent", ["PATH=/bin"], `/proc/${pid}/root`, "/");
 * // 'exec: "nonexistent": executable file not found in $PATH'
 * ```
 *
 * @module
 */
import { ERRNO, O } from "../ffi/constants.ts";
import { openFd } from "../ffi/fds.ts";
import { closeFd } from "../ffi/safe_fs.ts";
import { atInRoot } from "../ffi/safe_fs.ts";

/** Go's words for the errnos a lookup meets (syscall.Errno's Error()). */
const GO_ERRNO: Readonly<Record<number, string>> = {
  [ERRNO.ENOENT]: "no such file or directory",
  [ERRNO.ENOTDIR]: "not a directory",
  [ERRNO.ELOOP]: "too many levels of symbolic links",
  [ERRNO.EACCES]: "permission denied",
};

/**
 * Why `command` cannot be run in the folder `root` (the container's, e.g.
 * `/proc/<pid>/root`), or undefined when it can. A name with a slash is
 * taken as it is (relative to `cwd`), a bare name searched in `env`'s PATH;
 * a file counts as runnable when it is not a folder and has an execute bit,
 * as LookPath decides. Symlinks resolve inside `root`.
 */
export function lookPathProblem(
  command: string,
  env: readonly string[],
  root: string,
  cwd: string,
): string | undefined {
  const rootFd = openFd(root, O.PATH | O.DIRECTORY);
  try {
    // 0 when runnable, else the errno LookPath's stat or check gives.
    const check = (path: string): number => {
      const inRoot = path.startsWith("/") ? path : `${cwd.replace(/\/*$/, "")}/${path}`;
      return atInRoot(
        rootFd,
        inRoot,
        (info) => !info.isDirectory && ((info.mode ?? 0) & 0o111) !== 0 ? 0 : ERRNO.EACCES,
      );
    };
    if (command.includes("/")) {
      // /proc/self and its kind name whoever looks: from here, gcr, which the
      // container's proc does not show. What they lead to is the container
      // process's own business at exec (gcr-exec, never the host's binary).
      const absolute = command.startsWith("/") ? command : `${cwd.replace(/\/*$/, "")}/${command}`;
      if (/^\/proc\/(self|thread-self)(\/|$)/.test(absolute.replace(/\/+/g, "/"))) return undefined;
      const errno = check(command);
      if (errno === 0) return undefined;
      const words = GO_ERRNO[errno] ?? `errno ${errno}`;
      return errno === ERRNO.EACCES
        ? `exec: ${JSON.stringify(command)}: ${words}`
        : `exec: ${JSON.stringify(command)}: stat ${command}: ${words}`;
    }
    const path = env.findLast((entry) => entry.startsWith("PATH="))?.slice("PATH=".length) ?? "";
    // Go's filepath.SplitList: an empty PATH has no folders; an empty entry is ".".
    for (const dir of path ? path.split(":") : []) {
      if (check(`${dir || "."}/${command}`) === 0) return undefined;
    }
    return `exec: ${JSON.stringify(command)}: executable file not found in $PATH`;
  } finally {
    closeFd(rootFd);
  }
}
