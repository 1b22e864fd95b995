/**
 * `gcr __monitor …`: a detached container's monitor, as conmon is for
 * podman. `gcr run -d` starts gcr again this way (commands/run.ts).
 *
 * @module
 */
import { F_DUPFD_CLOEXEC, O } from "../ffi/constants.ts";
import { check } from "../ffi/errno.ts";
import { openFd } from "../ffi/fds.ts";
import { libc } from "../ffi/libc.ts";
import { StepError } from "../runner/runner.ts";
import { runCommand } from "./run.ts";

/**
 * The detached container's monitor (see detach): stdout is a pipe to the
 * `gcr run -d` that started it; once the container is registered, stdout
 * and stderr go to its log, and the pipe carries one line: `started <id>`
 * or `error <status> <message>`.
 */
export async function monitorCommand(argv: readonly string[]): Promise<number> {
  libc().setsid();
  const report = check(libc().fcntl(1, F_DUPFD_CLOEXEC, 10), "fcntl(1, F_DUPFD_CLOEXEC)");
  const send = (line: string) => {
    const bytes = new TextEncoder().encode(line + "\n");
    libc().write(report, bytes, BigInt(bytes.length));
    libc().close(report);
  };
  let sent = false, logging = false;
  try {
    return await runCommand(argv, {
      registered: (paths) => {
        logging = true;
        const fd = openFd(paths.log, O.WRONLY | O.CREAT | O.APPEND, 0o600);
        // Deno writes Deno.stdout, Deno.stderr and console to duplicates of
        // fds 1 and 2 it made at start-up: those must lead to the log too,
        // or the pipe to gcr run -d never reaches end-of-file.
        const stdio = [1, 2].map((n) => Deno.readLinkSync(`/proc/self/fd/${n}`));
        for (const entry of [...Deno.readDirSync("/proc/self/fd")]) {
          const n = Number(entry.name);
          if (n === report || n === fd) continue;
          try {
            if (stdio.includes(Deno.readLinkSync(`/proc/self/fd/${n}`))) check(libc().dup2(fd, n), `dup2(log, ${n})`);
          } catch (error) {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          }
        }
        libc().close(fd);
      },
      started: (id) => {
        sent = true;
        send(`started ${id}`);
      },
    });
  } catch (error) {
    const code = error instanceof StepError ? error.exitCode : 125;
    if (sent) throw error; // said in the log
    send(`error ${code} ${(error as Error).message}`);
    // gcr run -d says it; the log (when there is one yet) keeps it too.
    if (logging) Deno.stderr.writeSync(new TextEncoder().encode(`gcr: ${(error as Error).message}\n`));
    return code;
  }
}
