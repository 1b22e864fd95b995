/**
 * Any commands, side by side: each round runs every command once, in an
 * order rotated from round to round, so this VM's drift falls on all alike;
 * prints each command's median and its difference to the first's. How the
 * changes in bench/README.md were measured one against another (a command
 * of this checkout beside the same of a worktree of the commit before).
 *
 *   deno run -A bench/ab.ts [--runs N] [--warmup N] 'COMMAND' 'COMMAND' …
 *
 * A command is split on spaces (no shell); every run must exit 0.
 *
 * @module
 */
const options = { runs: 30, warmup: 3 };
const commands: string[][] = [];
for (let i = 0; i < Deno.args.length; i++) {
  const arg = Deno.args[i]!;
  if (arg === "--runs" || arg === "--warmup") {
    const value = Number(Deno.args[++i]);
    if (!Number.isInteger(value) || value < 0) throw new Error(`${arg} takes a whole number`);
    options[arg === "--runs" ? "runs" : "warmup"] = value;
  } else commands.push(arg.split(" ").filter(Boolean));
}
if (commands.length === 0) {
  console.error("usage: deno run -A bench/ab.ts [--runs N] [--warmup N] 'COMMAND' 'COMMAND' …");
  Deno.exit(2);
}

const samples: number[][] = commands.map(() => []);
for (let round = 0; round < options.warmup + options.runs; round++) {
  for (let k = 0; k < commands.length; k++) {
    const i = (k + round) % commands.length;
    const [program, ...args] = commands[i]!;
    const started = performance.now();
    const result = await new Deno.Command(program!, { args, stdout: "null", stderr: "piped" }).output();
    const took = performance.now() - started;
    if (!result.success) {
      throw new Error(`${commands[i]!.join(" ")}: exit ${result.code}\n${new TextDecoder().decode(result.stderr)}`);
    }
    if (round >= options.warmup) samples[i]!.push(took);
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const first = median(samples[0]!);
console.log(`${options.runs} rotated rounds; median ms, and minus the first command's`);
commands.forEach((command, i) => {
  const m = median(samples[i]!);
  console.log(`${m.toFixed(1).padStart(7)} ${(m - first).toFixed(1).padStart(6)}  ${command.join(" ")}`);
});
