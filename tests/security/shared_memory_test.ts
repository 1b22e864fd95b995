/**
 * A container's first process runs in gcr's own memory map until its exec
 * (CLONE_VM: steps/clone_namespaces.ts, ffi/thread_area.ts). While it does,
 * what could write to it writes to gcr: so the memory map, which is both
 * processes', must be closed to anything without CAP_SYS_PTRACE over the
 * host's user namespace, as a container's root is. Checked for real,
 * between the steps of `gcr run --step`, with a root in the container's
 * user namespace (nsenter --user) in the place of the container's root.
 * (gcr itself is closed to that root whatever its memory map: it runs in
 * the host's user namespace, over which that root has no capabilities.)
 *
 * @module
 */
import {
  busyboxRootfs,
  childrenOf,
  commandLine,
  describe,
  GCR,
  missingRoot,
  named,
  needs,
  REPO,
  ROOTFS_DIR,
  run,
  Running,
} from "../fixtures.ts";
import { assert, assertEquals } from "../helpers.ts";
import { sleep } from "../../host/time.ts";

const SKIP = missingRoot() ?? needs("setsid", "nsenter");

const KCMP_VM = 1;
const SYS_KCMP = 312;
const kcmp = Deno.build.arch === "x86_64"
  ? Deno.dlopen("libc.so.6", { syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" } })
    .symbols.syscall
  : undefined;

/** Whether two processes run in one memory map (kcmp(2): 0 means the same). */
function sameMemory(a: number, b: number): boolean {
  const result = Number(kcmp!(BigInt(SYS_KCMP), BigInt(a), BigInt(b), BigInt(KCMP_VM), 0n, 0n));
  assert(result >= 0, `kcmp(${a}, ${b}, KCMP_VM) failed`);
  return result === 0;
}

/** Whether a root in the user namespace of `pid` can read its /proc/<pid>/environ (ptrace's read check). */
async function openToContainerRoot(pid: number): Promise<boolean> {
  const result = await run("nsenter", ["--target", String(pid), "--user", "cat", `/proc/${pid}/environ`]);
  return result.code === 0;
}

Deno.test(
  named(
    "gcr run: until its exec the container's process shares gcr's memory map, closed to the container's root",
    SKIP ?? (kcmp ? undefined : `kcmp's number is recorded for x86_64; this is ${Deno.build.arch}`),
  ),
  async () => {
    await busyboxRootfs();
    const running = new Running(
      "setsid",
      ["-w", GCR, "run", "--rootfs-dir", ROOTFS_DIR, "--step", "--rm", "busybox", "sleep", "30"],
      { cwd: REPO, stdinPipe: true, timeoutMs: 60_000 },
    );
    let child = 0;
    try {
      // The steps that wait for Enter, in order (steps that run ahead do not).
      const waiting = () =>
        [...running.stderr.matchAll(/^\[\d+\/\d+\] ([a-z-]+): (?!.*\(runs at once\)$)/gm)].map((m) => m[1]!);
      const prompts = () => running.stderr.split("press Enter").length - 1;
      let answered = 0;
      const answerUntil = async (done: () => boolean, what: string) => {
        const deadline = performance.now() + 20_000;
        while (!done()) {
          if (running.exited) throw new Error(`gcr exited before ${what}\n${describe(await running.finish())}`);
          if (performance.now() > deadline) throw new Error(`timed out before ${what}\n${running.stderr}`);
          if (prompts() > answered) {
            await running.write("\n");
            answered++;
          }
          await sleep(10);
        }
      };
      // Up to pivot-root's prompt: the child has its id maps, mounts, and has not exec'd.
      await answerUntil(() => prompts() > answered && waiting()[answered] === "pivot-root", "pivot-root");
      const gcr = Number(running.stderr.match(/running as pid: (\d+)/)?.[1]);
      assert(gcr > 0, `gcr's pid in its log\n${running.stderr}`);
      child = childrenOf(gcr)[0] ?? 0;
      assert(child, `gcr ${gcr} has a child`);

      assert(sameMemory(gcr, child), "before its exec, the child runs in gcr's memory map");
      assertEquals(await openToContainerRoot(child), false, "the child, and so gcr's memory map, before the exec");

      // The rest of the steps, up to the exec of sleep.
      await answerUntil(() => commandLine(child).startsWith("sleep"), "the exec");
      assertEquals(sameMemory(gcr, child), false, "after its exec, the command has a memory map of its own");
      // The control: the same read of the same process, once it is the command.
      assertEquals(await openToContainerRoot(child), true, "the command, after the exec");

      Deno.kill(child, "SIGKILL");
      const result = await running.finish();
      assertEquals(result.code, 137, "gcr reports the command's SIGKILL", describe(result));
    } finally {
      if (!running.exited) {
        if (child) Deno.kill(child, "SIGKILL");
        await running.finish().catch(() => {});
      }
    }
  },
);
