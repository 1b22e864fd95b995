/**
 * What the podman tests ask of every runtime, rootful (podman_test.ts) and
 * rootless (podman_rootless_test.ts), each in an environment of its own:
 * `run --rm`, the detached lifecycle and `run -it`, as a user sees them.
 *
 * @module
 */
import { describe, isDead, type RunResult } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch } from "../helpers.ts";
import { type PodmanEnv, podmanEnv, type PodmanEnvOptions } from "./podman_env.ts";

/** Runs `fn` in a new podman environment, which is cleaned up after it whatever happens. */
export async function withPodman(options: PodmanEnvOptions, fn: (env: PodmanEnv) => Promise<void>): Promise<void> {
  const env = await podmanEnv(options);
  try {
    await fn(env);
  } finally {
    await env.cleanup();
  }
}

/** `podman run --rm`: the command's output, its exit status, no network but loopback, nothing left. */
export async function checkRunRm(env: PodmanEnv): Promise<void> {
  const hi = await env.podman(["run", "--rm", env.image, "sh", "-c", "echo hi; id -u"]);
  assertEquals(
    [hi.code, hi.stdout],
    [0, "hi\n0\n"],
    "podman run --rm: the output, as root of the container",
    describe(hi),
  );
  const seven = await env.podman(["run", "--rm", env.image, "sh", "-c", "exit 7"]);
  assertEquals(seven.code, 7, "the container's exit status", describe(seven));
  const none = await env.podman(["run", "--rm", env.image, "cat", "/proc/net/dev"]);
  assertEquals(none.code, 0, "reading /proc/net/dev", describe(none));
  assertEquals(
    none.stdout.split("\n").slice(2).filter(Boolean).map((l) => l.trim().split(":")[0]),
    ["lo"],
    "containers get no network but loopback by default",
    describe(none),
  );
  const left = await env.podman(["ps", "--all", "--quiet"]);
  assertEquals(left.stdout, "", "--rm removed the containers", describe(left));
}

/** `podman run -d`, then exec (output, status, `-i`, `-it`), inspect, stop by SIGTERM, rm. */
export async function checkDetachedLifecycle(env: PodmanEnv): Promise<void> {
  // A shell that ends on SIGTERM (pid 1 ignores signals it has no handler for).
  const started = await env.podman([
    "run",
    "-d",
    "--name",
    "sleeper",
    env.image,
    "sh",
    "-c",
    "trap 'exit 0' TERM; sleep 100 & wait",
  ]);
  assertEquals(started.code, 0, "podman run -d", describe(started));
  assertMatch(started.stdout, /^[0-9a-f]{64}\n$/, "run -d prints the container id", describe(started));
  const exec = await env.podman(["exec", "sleeper", "sh", "-c", "echo hi; id -u"]);
  assertEquals([exec.code, exec.stdout], [0, "hi\n0\n"], "podman exec", describe(exec));
  const status = await env.podman(["exec", "sleeper", "sh", "-c", "exit 5"]);
  assertEquals(status.code, 5, "podman exec passes the exit status", describe(status));
  const input = await env.podman(["exec", "-i", "sleeper", "cat"], { stdin: "piped\n" });
  assertEquals([input.code, input.stdout], [0, "piped\n"], "podman exec -i", describe(input));
  const execTty = await env.tty(["exec", "-it", "sleeper", "sh", "-c", "tty; exit 4"]);
  assertEquals(execTty.code, 4, "podman exec -it exit status", describe(execTty));
  assertIncludes(execTty.stdout, "/dev/pts/", "podman exec -it has a terminal", describe(execTty));
  const running = await env.podman(["inspect", "--format", "{{.State.Status}}", "sleeper"]);
  assertEquals(running.stdout.trim(), "running", "inspect", describe(running));
  const stopped = await env.podman(["stop", "sleeper"]);
  assertEquals(stopped.code, 0, "podman stop", describe(stopped));
  const exited = await env.podman(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "sleeper"]);
  // Its trap's status: SIGTERM ended it (a SIGKILL after podman's 10 s would be 137).
  assertEquals(exited.stdout.trim(), "exited 0", "inspect after stop", describe(exited));
  const removed = await env.podman(["rm", "sleeper"]);
  assertEquals(removed.code, 0, "podman rm", describe(removed));
  const left = await env.podman(["ps", "--all", "--quiet"]);
  assertEquals(left.stdout, "", "no containers left", describe(left));
}

/** `podman run -it` under a pseudo-terminal: the exit status, and the terminal shows the command's output alone. */
export async function checkRunTty(env: PodmanEnv): Promise<void> {
  // The pause: podman attaches to conmon while the container starts, and
  // output written before it has attached is lost (1 run in 7 here, with
  // runc as with gcr: a race between podman and conmon, not the runtime).
  const result = await env.tty(["run", "--rm", "-it", env.image, "sh", "-c", "sleep 0.5; tty; exit 3"]);
  assertEquals(result.code, 3, "the exit status through podman and script", describe(result));
  // Before it, at most the NUL podman writes on attaching.
  assertMatch(result.stdout, /^\W*\/dev\/pts\/\d+\r?\n$/, "the container's stdio is a terminal", describe(result));
}

/** runc and gcr, as the tests name them, with the runtime's path. */
export type Runtimes = readonly (readonly [string, () => string])[];

/**
 * `podman <args…>` once under each runtime, each in a fresh environment
 * (`options` for its path): the results by runtime name, for comparing.
 */
export async function podmanUnderEach(
  runtimes: Runtimes,
  options: (runtime: string) => PodmanEnvOptions,
  args: (env: PodmanEnv) => string[],
): Promise<Record<string, RunResult>> {
  const seen: Record<string, RunResult> = {};
  for (const [name, path] of runtimes) {
    await withPodman(options(path()), async (env) => {
      seen[name] = await env.podman(args(env));
    });
  }
  return seen;
}

/** Starts a container named `left` that sleeps, for cleanup to stop; returns its host pid. */
export async function startLeftRunning(env: PodmanEnv): Promise<number> {
  const started = await env.podman(["run", "-d", "--name", "left", env.image, "sleep", "1000"]);
  assertEquals(started.code, 0, "podman run -d", describe(started));
  const inspect = await env.podman(["inspect", "--format", "{{.State.Pid}}", "left"]);
  const pid = Number(inspect.stdout.trim());
  assert(pid > 0 && !isDead(pid), "the container's process runs", describe(inspect));
  return pid;
}
