/**
 * What gcr-exec, the sealed exec trampoline, adds to every start:
 *
 * - making its memfd (memfd_create, write, F_ADD_SEALS), in gcr's process,
 *   timed in-process over many runs;
 * - the one more execve, of its 578-byte ELF, before the command's: timed
 *   as `gcr-exec 3 /bin/true /bin/true` against `/bin/true` spawned the
 *   same way, in interleaved rounds (spawning dominates both; the
 *   difference is the trampoline's).
 *
 *   deno run -A bench/exec_trampoline.ts [--runs N]
 *
 * @module
 */
import { sealedTrampoline, trampolineElf } from "../ffi/exec_trampoline.ts";
import { libc } from "../ffi/libc.ts";

const runs = Number(Deno.args[Deno.args.indexOf("--runs") + 1] ?? 300) || 300;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// Making the memfd: warm up, then time batches (one call is below the timer's resolution).
for (let i = 0; i < 50; i++) libc().close(sealedTrampoline());
const batches: number[] = [];
for (let b = 0; b < 50; b++) {
  const started = performance.now();
  for (let i = 0; i < 100; i++) libc().close(sealedTrampoline());
  batches.push((performance.now() - started) / 100);
}

// The extra exec: both through `sh -c 'exec …'` with fd 3 open, so the only difference is gcr-exec's execve.
const dir = Deno.makeTempDirSync({ prefix: "gcr-exec-bench-" });
try {
  const program = `${dir}/gcr-exec`;
  Deno.writeFileSync(program, trampolineElf(), { mode: 0o755 });
  const through = ["-c", `exec 3>/dev/null; exec ${program} 3 /bin/true /bin/true`];
  const direct = ["-c", "exec 3>/dev/null; exec /bin/true"];
  const time = async (args: string[]) => {
    const started = performance.now();
    const { success } = await new Deno.Command("/bin/sh", { args, stdout: "null", stderr: "null" }).output();
    if (!success) throw new Error(`sh ${args.join(" ")} failed`);
    return performance.now() - started;
  };
  const withTrampoline: number[] = [];
  const without: number[] = [];
  for (let round = 0; round < runs + 20; round++) {
    const [a, b] = round % 2 ? [await time(through), await time(direct)] : [NaN, NaN];
    const [d, c] = round % 2 ? [NaN, NaN] : [await time(direct), await time(through)];
    if (round < 20) continue;
    withTrampoline.push(round % 2 ? a : c);
    without.push(round % 2 ? b : d);
  }
  const extra = median(withTrampoline) - median(without);
  console.log(
    [
      `memfd made and sealed:    ${(median(batches) * 1000).toFixed(1)} µs median per start (50 batches of 100)`,
      `spawn, through gcr-exec:  ${median(withTrampoline).toFixed(3)} ms median (${runs} interleaved rounds)`,
      `spawn, direct:            ${median(without).toFixed(3)} ms median`,
      `the trampoline's execve:  ${(extra * 1000).toFixed(0)} µs`,
    ].join("\n"),
  );
} finally {
  Deno.removeSync(dir, { recursive: true });
}
