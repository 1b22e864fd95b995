/**
 * ./gcr's start without Deno (launch/gcr.S, start_gate): with create's
 * start plan (commands/start_plan.ts) and an engine's arguments, it opens
 * the container's gate itself, makes `started`, and waits for the exec;
 * a failure or no exec in time it hands to Deno's start through
 * `start.report`; anything else it leaves to Deno's start, as it was. In a
 * checkout of stand-ins (launcher_checkout.ts): the stand-in "deno"
 * printing is how a case shows that the launcher handed over; a shell
 * holding the two FIFOs stands in for the container's process at its gate.
 *
 * @module
 */
import { join } from "node:path";
import { type ContainerPaths, containerPaths } from "../../state/paths.ts";
import type { ContainerRecord } from "../../state/records.ts";
import { START_PLAN, writeStartPlan } from "../../commands/start_plan.ts";
import { exists } from "../../host/files.ts";
import { describe, run } from "../fixtures.ts";
import { assert, assertEquals } from "../helpers.ts";
import { checkout, printedArgs, runLauncher } from "./launcher_checkout.ts";

/**
 * The container's process at its gate: holds the start FIFO to read (as
 * the container's first process does) and the report FIFO to write (as its
 * status descriptor does), says "ready", takes the byte, writes the report
 * words given in printf's octal, and closes the report FIFO (its exec), or
 * with "hold" keeps it open (a command that is never exec'd).
 */
const GATE = `exec 3<>"$1" 4<>"$2"
echo ready
head -c1 <&3 >/dev/null
: >"$3"
printf "$4" >&4
[ "$5" = hold ] && exec sleep 60
exec 4>&-`;

interface Gated {
  root: string;
  id: string;
  paths: ContainerPaths;
  /** Whether the stand-in took the gate's byte. */
  passed(): boolean;
  /** The stand-in's exit (it ends once its report is written, unless held). */
  ended(): Promise<Deno.CommandStatus>;
  remove(): Promise<void>;
}

/** A runtime folder as create leaves a container without hooks: record, FIFOs, start plan; its process waiting at the gate. */
async function gated(report = "\\000\\000\\000\\000", mode: "exec" | "hold" | "none" = "exec"): Promise<Gated> {
  const base = Deno.makeTempDirSync({ prefix: "gcr-native-start-" });
  const root = join(base, "run");
  const id = "c-1.a_b+c";
  const paths = containerPaths(id, base, root);
  Deno.mkdirSync(paths.run, { recursive: true });
  const record = { id, initPid: 1, initStart: "1", status: "created" } as unknown as ContainerRecord;
  Deno.writeTextFileSync(paths.record, JSON.stringify(record));
  const fifos = await run("mkfifo", ["-m", "0600", paths.startFifo, paths.reportFifo]);
  assertEquals(fifos.code, 0, "mkfifo", describe(fifos));
  writeStartPlan(paths, record);
  const passedFile = join(base, "passed");
  const child = mode === "none" ? undefined : new Deno.Command("sh", {
    args: ["-c", GATE, "gate", paths.startFifo, paths.reportFifo, passedFile, report, mode],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  if (child) {
    const reader = child.stdout.getReader();
    const first = await reader.read();
    assertEquals(new TextDecoder().decode(first.value), "ready\n", "the stand-in holds both FIFOs");
    reader.releaseLock();
    await child.stdout.cancel();
  }
  let status: Promise<Deno.CommandStatus> | undefined;
  const ended = () => status ??= child ? child.status : Promise.resolve({ success: true, code: 0, signal: null });
  return {
    root,
    id,
    paths,
    passed: () => exists(passedFile),
    ended,
    remove: async () => {
      if (child) {
        try {
          child.kill("SIGKILL");
        } catch { /* ended */ }
        await ended();
      }
      Deno.removeSync(base, { recursive: true });
    },
  };
}

Deno.test("./gcr starts a created container by its gate, without Deno, for each form of an engine's start", async () => {
  const c = checkout();
  const forms: ((g: Gated) => [string[], Record<string, string>])[] = [
    (g) => [["--root", g.root, "start", g.id], {}],
    (g) => [["--root=" + g.root, "--log", "/x/log.json", "--log-format", "json", "start", g.id], {}],
    (g) => [["--systemd-cgroup", "--log-format=json", "--root", g.root, "start", g.id], {}],
    (g) => [["--log=/x/log", "start", g.id], { GCR_RUN: g.root }],
  ];
  try {
    for (const form of forms) {
      const g = await gated();
      try {
        const [args, env] = form(g);
        assertEquals(await runLauncher(c, args, env), "", `${args.join(" ")}: no stand-in ran`);
        assert(g.passed(), "the container's process took the byte");
        assert(!exists(g.paths.startFifo), "the start FIFO is gone (a second start is Deno's: already running)");
        assert(exists(g.paths.started), "`started` made: the record's status and start time");
        assertEquals(Deno.lstatSync(g.paths.started).size, 0, "an empty file; its mtime is the time");
        assert(!exists(g.paths.startReport), "nothing handed to Deno");
        assertEquals((await g.ended()).code, 0, "the stand-in ended");
      } finally {
        await g.remove();
      }
    }
  } finally {
    c.remove();
  }
});

Deno.test("./gcr hands a start whose command was not exec'd to Deno's start, with its reports", async () => {
  const c = checkout();
  try {
    // -ENOENT from the exec trampoline, after two calls that succeeded.
    const failed = await gated("\\000\\000\\000\\000\\000\\000\\000\\000\\376\\377\\377\\377");
    try {
      const args = ["--root", failed.root, "--log", "/x/log", "start", failed.id];
      const printed = await runLauncher(c, args);
      assertEquals(printed.split("\n")[0], "deno", "Deno's start says the failure in --log", printed);
      assert(printed.includes(printedArgs(args)), "with the arguments as given", printed);
      assert(failed.passed(), "the gate was opened");
      assertEquals(
        [...Deno.readFileSync(failed.paths.startReport)],
        [0, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff],
        "start.report holds the reports",
      );
      assert(exists(failed.paths.started) && !exists(failed.paths.startFifo), "started all the same");
    } finally {
      await failed.remove();
    }
    // Held: the report FIFO is never closed. ./gcr waits 10 s (EXEC_WAIT_MS), as Deno's start does.
    const held = await gated("\\000\\000\\000\\000", "hold");
    try {
      const printed = await runLauncher(c, ["--root", held.root, "start", held.id]);
      assertEquals(printed.split("\n")[0], "deno", "no exec within the wait: Deno's start warns", printed);
      assertEquals([...Deno.readFileSync(held.paths.startReport)], [0, 0, 0, 0], "what came, and no failure in it");
    } finally {
      await held.remove();
    }
  } finally {
    c.remove();
  }
});

Deno.test("./gcr leaves a start its plan does not cover to Deno, with the arguments as given, gate closed", async () => {
  const c = checkout();
  try {
    const declines = async (
      why: string,
      args: (g: Gated) => string[],
      change: (g: Gated) => void = () => {},
      env: Record<string, string> = {},
      mode: "exec" | "none" = "exec",
    ) => {
      const g = await gated(undefined, mode);
      try {
        change(g);
        const printed = await runLauncher(c, args(g), env);
        assertEquals(printed.split("\n")[0], "deno", `${why}: Deno's start`);
        assert(printed.includes(printedArgs(args(g))), `${why}: the arguments as given`, printed);
        assert(!g.passed(), `${why}: the gate stays closed`);
        assert(!exists(g.paths.started) && !exists(g.paths.startReport), `${why}: no start recorded`);
      } finally {
        await g.remove();
      }
    };
    const start = (g: Gated) => ["--root", g.root, "start", g.id];
    const plan = (text: string) => (g: Gated) => Deno.writeTextFileSync(g.paths.startPlan, text);
    await declines("no plan (hooks, or the record written since create)", start, (g) => {
      Deno.removeSync(g.paths.startPlan);
    });
    await declines("another format", start, plan(START_PLAN.replace("1", "2")));
    await declines("a plan with more after it", start, plan(START_PLAN + "x"));
    await declines("a plan without its NUL", start, plan(START_PLAN.slice(0, -1)));
    await declines("a plan that is a symlink", start, (g) => {
      Deno.renameSync(g.paths.startPlan, `${g.paths.startPlan}.real`);
      Deno.symlinkSync(`${g.paths.startPlan}.real`, g.paths.startPlan);
    });
    await declines("no start FIFO (started already)", start, (g) => Deno.removeSync(g.paths.startFifo));
    await declines("no report FIFO", start, (g) => Deno.removeSync(g.paths.reportFifo));
    await declines("no one at the gate (the container's process is gone)", start, () => {}, {}, "none");
    await declines("--trace-dir (Deno's start traces each call)", (g) => ["--trace-dir", "/t", ...start(g)]);
    await declines("--debug, an option it does not take", (g) => ["--debug", ...start(g)]);
    await declines("--force, which start does not take", (g) => ["--root", g.root, "start", "--force", g.id]);
    await declines("an argument after the id", (g) => [...start(g), "x"]);
    await declines("no id", (g) => ["--root", g.root, "start"]);
    await declines("an id that is a path", (g) => ["--root", g.root, "start", `../run/${g.id}`]);
    await declines("$GCR_STATE without --root", (g) => ["start", g.id], () => {}, { GCR_STATE: "/s" });
  } finally {
    c.remove();
  }
});
