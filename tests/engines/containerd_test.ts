/**
 * containerd, a real engine, driving gcr through its runc shim
 * (`ctr run --runc-binary ./gcr`), side by side with runc, the anchor: the
 * same ctr commands must give the same results with both. Also: the
 * containerd fixture (tests/engines/containerd_env.ts) leaves nothing behind.
 */
import { describe, isDead, named, type RunResult } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, waitFor } from "../helpers.ts";
import { exists, readTextOr } from "../../host/files.ts";
import {
  assertNothingLeft,
  BUSYBOX_IMAGE,
  type ContainerdEnv,
  containerdEnv,
  containerdUnavailable,
  hostContainerdState,
  RUNTIME_NAMES,
} from "./containerd_env.ts";

const skip = containerdUnavailable();

async function withEnv(fn: (env: ContainerdEnv) => Promise<void>): Promise<void> {
  const env = await containerdEnv();
  try {
    await env.importImages();
    await fn(env);
  } finally {
    await env.cleanup();
  }
}

/** The exit status `ctr tasks delete` reports (a warning on stderr when it is not 0). */
function exitStatusOf(deleted: RunResult): number {
  return Number(deleted.stderr.match(/exit with non-zero exit code (\d+)/)?.[1] ?? 0);
}

/** `ctr tasks ls`, as `id status` lines. */
async function taskStates(env: ContainerdEnv): Promise<string[]> {
  const listed = await env.ctr(["tasks", "ls"]);
  assertEquals(listed.code, 0, "ctr tasks ls", describe(listed));
  return listed.stdout.split("\n").slice(1).filter(Boolean).map((line) => {
    const [id, , status] = line.trim().split(/\s+/);
    return `${id} ${status}`;
  });
}

for (const runtime of RUNTIME_NAMES) {
  Deno.test(
    named(`ctr run with ${runtime}: output, exit status, a terminal, exec, kill and delete`, skip),
    async () => {
      await withEnv(async (env) => {
        const context = () => env.log();
        const hi = await env.ctr(env.runArgs(runtime, ["--rm", BUSYBOX_IMAGE, "hi", "echo", "hi"]));
        assertEquals([hi.code, hi.stdout], [0, "hi\n"], "ctr run --rm echo hi", `${describe(hi)}\n${context()}`);
        const three = await env.ctr(env.runArgs(runtime, ["--rm", BUSYBOX_IMAGE, "three", "sh", "-c", "exit 3"]));
        assertEquals(three.code, 3, "ctr run --rm passes the exit status", `${describe(three)}\n${context()}`);

        // The pauses: ctr returns on the exit without draining the terminal's output, which
        // is lost when the exit comes first (1 exec -t in 40 here under load, with runc as with gcr).
        const tty = await env.tty(
          env.runArgs(runtime, ["--rm", "-t", BUSYBOX_IMAGE, "tty", "sh", "-c", "tty; sleep 0.2; exit 4"]),
        );
        assertEquals(tty.code, 4, "ctr run -t: the exit status through ctr and script", describe(tty));
        assertMatch(
          tty.stdout,
          /\/dev\/pts\/\d+\r*\n/,
          "ctr run -t: the container's stdio is a terminal",
          describe(tty),
        );

        // A shell that ends with 7 on SIGTERM (pid 1 ignores signals it has no handler for).
        const script = "trap 'exit 7' TERM; sleep 1000 & wait";
        const started = await env.ctr(env.runArgs(runtime, ["-d", BUSYBOX_IMAGE, "d", "sh", "-c", script]));
        assertEquals(started.code, 0, "ctr run -d", `${describe(started)}\n${context()}`);
        assertEquals(await taskStates(env), ["d RUNNING"], "ctr tasks ls after run -d");
        const pid = Number((await env.ctr(["tasks", "ls"])).stdout.match(/^d\s+(\d+)/m)?.[1]);
        const cgroup = readTextOr(`/proc/${pid}/cgroup`);
        assertIncludes(cgroup, `:pids:/${env.namespace}/d\n`, "the task is in ctr's cgroup, /<namespace>/<id>", cgroup);

        const exec = await env.ctr([
          "tasks",
          "exec",
          "--exec-id",
          "x",
          "d",
          "sh",
          "-c",
          "echo out; echo err >&2; exit 5",
        ]);
        assertEquals([exec.code, exec.stdout, exec.stderr], [5, "out\n", "err\n"], "ctr tasks exec", describe(exec));
        const execTty = await env.tty([
          "tasks",
          "exec",
          "-t",
          "--exec-id",
          "y",
          "d",
          "sh",
          "-c",
          "tty; sleep 0.2; exit 6",
        ]);
        assertEquals(execTty.code, 6, "ctr tasks exec -t: the exit status", describe(execTty));
        assertMatch(execTty.stdout, /\/dev\/pts\/\d+\r*\n/, "ctr tasks exec -t has a terminal", describe(execTty));
        const ps = await env.ctr(["tasks", "ps", "d"]);
        assertEquals(
          ps.stdout.split("\n").filter((l) => /^\d+/.test(l)).length,
          2,
          "ctr tasks ps: sh and sleep",
          describe(ps),
        );

        const killed = await env.ctr(["tasks", "kill", "d"]);
        assertEquals(killed.code, 0, "ctr tasks kill (SIGTERM)", describe(killed));
        await waitFor(
          "the task to stop",
          async () => (await taskStates(env)).includes("d STOPPED") || undefined,
          10_000,
        );
        const again = await env.ctr(["tasks", "kill", "-s", "SIGKILL", "d"]);
        assertEquals(again.code, 1, "ctr tasks kill of a stopped task fails", describe(again));
        assertIncludes(again.stderr, "process already finished", "and says why", describe(again));
        const deleted = await env.ctr(["tasks", "delete", "d"]);
        assertEquals(deleted.code, 0, "ctr tasks delete", describe(deleted));
        assertEquals(exitStatusOf(deleted), 7, "the task's exit status, from its SIGTERM trap", describe(deleted));
        assertEquals(await taskStates(env), [], "no task after delete");
        const removed = await env.ctr(["containers", "delete", "d"]);
        assertEquals(removed.code, 0, "ctr containers delete", describe(removed));
        const containers = await env.ctr(["containers", "ls", "--quiet"]);
        assertEquals(containers.stdout, "", "no container left", describe(containers));
        assertNothingLeft(env.leftovers(), `ctr with ${runtime}`, context());
      });
    },
  );

  Deno.test(named(`ctr tasks delete --force ends a running task with ${runtime}`, skip), async () => {
    await withEnv(async (env) => {
      const started = await env.ctr(env.runArgs(runtime, ["-d", BUSYBOX_IMAGE, "f", "sleep", "1000"]));
      assertEquals(started.code, 0, "ctr run -d", `${describe(started)}\n${env.log()}`);
      const listed = await env.ctr(["tasks", "ls"]);
      const pid = Number(listed.stdout.match(/^f\s+(\d+)/m)?.[1]);
      assert(pid > 0 && !isDead(pid), "the task's process runs", describe(listed));
      const deleted = await env.ctr(["tasks", "delete", "--force", "f"]);
      assertEquals(deleted.code, 0, "ctr tasks delete --force", describe(deleted));
      assertEquals(exitStatusOf(deleted), 137, "the task ended by SIGKILL", describe(deleted));
      assert(isDead(pid), "the task's process is gone");
      assertEquals((await env.ctr(["containers", "delete", "f"])).code, 0, "ctr containers delete");
      assertNothingLeft(env.leftovers(), `delete --force with ${runtime}`, env.log());
    });
  });
}

Deno.test(
  named("containerd environment cleanup leaves no processes, mounts, cgroups or host state", skip),
  async () => {
    const before = hostContainerdState();
    const env = await containerdEnv();
    const dir = env.dir;
    let taskPid = 0;
    const daemon = env.pid;
    try {
      await env.importImages();
      // Left running on purpose, one with each runtime: cleanup has to end them and their shims.
      for (const runtime of RUNTIME_NAMES) {
        const started = await env.ctr(env.runArgs(runtime, ["-d", BUSYBOX_IMAGE, `left-${runtime}`, "sleep", "1000"]));
        assertEquals(started.code, 0, `ctr run -d with ${runtime}`, `${describe(started)}\n${env.log()}`);
      }
      const listed = await env.ctr(["tasks", "ls"]);
      taskPid = Number(listed.stdout.match(/^left-gcr\s+(\d+)/m)?.[1]);
      assert(taskPid > 0 && !isDead(taskPid), "the gcr task's process runs", describe(listed));
      assertEquals(env.leftovers().processes.filter((p) => p.includes("containerd-shim")).length, 2, "two shims run");
    } finally {
      await env.cleanup();
    }
    assert(isDead(daemon), "containerd is stopped");
    assert(isDead(taskPid), "the task's process is gone");
    assert(!exists(dir), `${dir} is removed`);
    assertEquals(hostContainerdState(), before, "containerd, ctr, the shims and gcr left the host alone");
    await env.cleanup(); // idempotent
  },
);
