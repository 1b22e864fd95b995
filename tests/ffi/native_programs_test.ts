/**
 * gcr's programs that are not JavaScript: their recorded bytes are what
 * their sources assemble to, and gcr-monitor (ffi/monitor.S) does what a
 * detached container's parent must, shown with a stand-in for gcr: a shell
 * script that, as `__monitor`, starts a python that makes a child with
 * clone(CLONE_PARENT) (as gcr makes the container) and, as `__exited`,
 * writes down what it was given and its pid.
 *
 * @module
 */
import { join } from "node:path";
import { assemble, NATIVE_PROGRAMS } from "../../ffi/native_build.ts";
import { monitorElf } from "../../ffi/monitor.ts";
import { describe, missingPrograms, named, run } from "../fixtures.ts";
import { assertEquals, assertMatch, waitFor } from "../helpers.ts";
import { readTextOr } from "../../host/files.ts";

for (const { source, module, constant } of NATIVE_PROGRAMS) {
  const name = source.split("/").pop()!;
  Deno.test(named(`the recorded code is what ${name} assembles to`, missingPrograms("as", "objcopy")), async () => {
    const recorded = (await import(module))[constant] as Uint8Array;
    assertEquals(
      recorded.toBase64(),
      (await assemble(source)).toBase64(),
      `${module.split("/").pop()} is stale: run \`deno task native\``,
    );
  });
}

/** The stand-in for gcr: `$1` is __monitor or __exited (its own path comes first, as gcr's prefix does). */
const STAND_IN = `
out=$OUT
if [ "$1" = "__exited" ]; then echo "exited $2 pid $$ comm $(cat /proc/$$/comm)" >> "$out"; exit 0; fi
echo "gcr pid $$ parent $PPID session $(cut -d' ' -f6 /proc/$$/stat) parent-comm $(cat /proc/$PPID/comm)" >> "$out"
case "$2" in
  fail) echo "gcr failed" >&2; exit 9 ;;
  container)
    exec python3 -c '
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
pid = libc.syscall(56, 0x8000 | 17, 0, 0, 0, 0)  # clone(CLONE_PARENT|SIGCHLD): like fork, with gcr-monitor as parent
if pid == 0:
    time.sleep(float(sys.argv[1])); os._exit(7)
open(os.environ["OUT"], "a").write(f"container {pid}\\n")
time.sleep(float(sys.argv[2]))
' "$3" "$4" ;;
esac
`;

async function withMonitor(fn: (monitor: string, script: string, out: string) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-monitor-" });
  try {
    const monitor = join(dir, "gcr-monitor");
    Deno.writeFileSync(monitor, monitorElf(), { mode: 0o755 });
    const script = join(dir, "gcr.sh");
    Deno.writeTextFileSync(script, STAND_IN);
    await fn(monitor, script, join(dir, "out"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const lines = (out: string) => readTextOr(out).split("\n").filter(Boolean);

Deno.test(
  named(
    "gcr-monitor: gcr failing before any container is its exit status; stdio passes through",
    missingPrograms("sh"),
  ),
  () =>
    withMonitor(async (monitor, script, out) => {
      const result = await run(monitor, ["/bin/sh", script, "__monitor", "fail"], { env: { OUT: out } });
      assertEquals(
        [result.code, result.stderr],
        [9, "gcr failed\n"],
        "gcr's status and what it said",
        describe(result),
      );
      const [gcr] = lines(out);
      assertMatch(
        gcr!,
        /^gcr pid (\d+) parent (\d+) session \2 parent-comm gcr-monitor$/,
        "gcr runs as the child of gcr-monitor, in its session",
      );
    }),
);

Deno.test(
  named(
    "gcr-monitor: lets go of its stdout at once, waits for the container and gcr, then becomes gcr __exited STATUS",
    missingPrograms("python3"),
  ),
  () =>
    withMonitor(async (monitor, script, out) => {
      // The container outlives gcr (0.6 s against 0.1): gcr run -d reads the
      // pipe to its end, which must come with gcr, not with the container.
      const child = new Deno.Command(monitor, {
        args: ["/bin/sh", script, "__monitor", "container", "0.6", "0.1"],
        env: { OUT: out },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await new Response(child.stdout).text();
      await new Response(child.stderr).text();
      assertEquals(lines(out).filter((l) => l.startsWith("exited")), [], "stdio ended while the container still ran");
      const { code } = await child.status;
      assertEquals(code, 0, "the monitor ends as gcr __exited does");
      const found = await waitFor("the __exited line", () => lines(out).find((l) => l.startsWith("exited")), 5000);
      const [gcr, container] = lines(out);
      const monitorPid = gcr!.match(/parent (\d+)/)![1];
      assertMatch(container!, /^container \d+$/, "the stand-in made its container", lines(out).join("\n"));
      assertEquals(
        found,
        `exited ${7 << 8} pid ${monitorPid} comm sh`,
        "__exited gets the container's wait status, in the monitor's own pid",
      );
    }),
);

Deno.test(
  named("gcr-monitor: a container that ends before gcr has is recorded after gcr ends", missingPrograms("python3")),
  () =>
    withMonitor(async (monitor, script, out) => {
      const result = await run(monitor, ["/bin/sh", script, "__monitor", "container", "0", "0.4"], {
        env: { OUT: out },
      });
      assertEquals(result.code, 0, "gcr's status", describe(result));
      const found = await waitFor("the __exited line", () => lines(out).find((l) => l.startsWith("exited")), 5000);
      assertMatch(found, /^exited 1792 pid \d+ /, "the container's status, kept while gcr ran");
    }),
);

Deno.test("gcr-monitor: without __monitor among its arguments it does nothing and exits 127", () =>
  withMonitor(async (monitor, _script, out) => {
    for (const args of [[], ["/bin/sh"], ["/bin/sh", "-c", "echo ran > $OUT"], ["/bin/sh", "__monitor"]]) {
      const result = await run(monitor, args, { env: { OUT: out } });
      assertEquals(result.code, 127, `gcr-monitor ${args.join(" ")}`, describe(result));
    }
    assertEquals(lines(out), [], "nothing was run");
  }));
