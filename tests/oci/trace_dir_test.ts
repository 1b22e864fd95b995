/**
 * `gcr --trace-dir DIR`, the global option an engine passes as a runtime
 * argument: each OCI verb appends what it did to `DIR/<id>.trace`, and
 * nothing of it reaches the verb's stdio, which is the container's or the
 * engine's. The verbs are run as an engine runs them (create with its
 * output in files, start, exec --process, kill, delete), and the file is
 * read as a person watching the engine would read it.
 *
 * @module
 */
import { join } from "node:path";
import { describe, named, run } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch } from "../helpers.ts";
import { exists, readTextOr } from "../../host/files.ts";
import { SKIP, withOci } from "./oci_env.ts";

/** The file's parts: one per verb, from its `── <time> pid N: gcr …` line to its `── exit` line. */
function parts(text: string): { command: string; body: string; end: string }[] {
  const found = [...text.matchAll(/^── \S+ pid \d+: gcr (.*)\n([\s\S]*?)^── exit (.*)$/gm)];
  return found.map((m) => ({ command: m[1]!, body: m[2]!, end: m[3]! }));
}

Deno.test(
  named(
    "--trace-dir: create, start, exec, kill and delete each append their steps, calls and hooks to <id>.trace",
    SKIP,
  ),
  () =>
    withOci(async (o) => {
      const traces = join(o.work, "traces");
      const bundle = await o.bundle((c) => {
        c.process.args = ["sleep", "60"];
        // Every kind of hook, each saying its name: the trace shows each where the spec runs it.
        const hook = (kind: string) => [{ path: "/bin/sh", args: ["sh", "-c", `: ${kind}`] }];
        c.hooks = {
          prestart: hook("prestart"),
          createRuntime: hook("createRuntime"),
          createContainer: hook("createContainer"),
          startContainer: hook("startContainer"),
          poststart: [{ path: "/bin/sh", args: ["sh", "-c", "true"] }],
          poststop: [{ path: "/bin/sh", args: ["sh", "-c", "exit 0"] }],
        };
      });
      const id = o.newId();
      const T = ["--trace-dir", traces];
      const created = await o.toFiles([...T, "create", "--bundle", bundle, id]);
      assertEquals(created.code, 0, "create with --trace-dir", describe(created));
      assertEquals(created.stderr + created.stdout, "", "nothing of the trace on create's stdio (the container's)");
      const pid = (await o.state(id)).pid as number;
      o.pids.push(pid);
      await o.gcrOk([...T, "start", id]);
      await o.gcrOk([...T, "state", id]);
      const processFile = join(o.work, "process.json");
      Deno.writeTextFileSync(
        processFile,
        JSON.stringify({
          args: ["sh", "-c", "echo from-exec; exit 4"],
          cwd: "/",
          env: ["PATH=/bin"],
          user: { uid: 0, gid: 0 },
        }),
      );
      const exec = await o.gcr([...T, "exec", "--process", processFile, id]);
      assertEquals(
        [exec.code, exec.stdout],
        [4, "from-exec\n"],
        "exec's status and output are the process's",
        describe(exec),
      );
      await o.gcrOk([...T, "kill", id, "KILL"]);
      await o.waitStatus(id, "stopped");
      const again = await o.gcr([...T, "kill", id, "KILL"]);
      assertEquals(again.code, 1, "kill of a stopped container fails as runc's", describe(again));
      await o.gcrOk([...T, "delete", id]);

      const text = readTextOr(join(traces, `${id}.trace`));
      const verbs = parts(text);
      // state is traced too: every call an engine makes is in the file.
      const main = verbs.filter((v) => !v.command.includes(" state "));
      assertEquals(
        main.map((v) =>
          `${v.command.replace(/^.*? (create|start|exec|kill|delete) /, "$1 ")} → ${v.end.replace(/ +[\d.]+ ms$/, "")}`
        ),
        [
          `create --bundle ${bundle} ${id} → 0`,
          `start ${id} → 0`,
          `exec --process ${processFile} ${id} → 4`,
          `kill ${id} KILL → 0`,
          `kill ${id} KILL → 1: container not running`,
          `delete ${id} → 0`,
        ],
        "one part per verb, each with the engine's command line and its exit status",
        text,
      );
      const [create, start, execPart, kill, , del] = main;
      assertMatch(create!.body, /^\[1\/\d+\] clone: /m, "create: its first step", text);
      assertMatch(create!.body, /^ {4}pivot_root\(/m, "create: the child's calls, one per line", text);
      assertMatch(create!.body, /^ {4}changed: namespace pid: /m, "create: what changed after a step", text);
      assertMatch(
        create!.body,
        /reports end here; the child waits for gcr start/,
        "create: ends at the start gate",
        text,
      );
      for (const kind of ["prestart", "createRuntime", "createContainer"]) {
        assertIncludes(create!.body, `  ${kind} hook #0: /bin/sh -c : ${kind} (`, `create: the ${kind} hook`, text);
        assertIncludes(create!.body, `  ${kind} hook #0: exit status 0`, `create: the ${kind} hook's status`, text);
      }
      assertIncludes(
        start!.body,
        "  startContainer hook #0: /bin/sh -c : startContainer (",
        "start: the startContainer hook, before the gate",
        text,
      );
      assertIncludes(start!.body, "start.fifo, one byte) = 1", "start: the byte into the start FIFO", text);
      assert(
        start!.body.indexOf("startContainer hook #0") < start!.body.indexOf("start.fifo, one byte"),
        "start: the startContainer hook runs before the gate opens",
        text,
      );
      assertIncludes(start!.body, "sleep exec'd", "start: the command's exec seen", text);
      assertIncludes(
        start!.body,
        "  poststart hook #0: /bin/sh -c true (in the runtime's namespaces",
        "start: the hook",
        text,
      );
      assertMatch(start!.body, /^ {4}execveat\(.*"sh", "-c", "true"/m, "start: the hook process's own steps", text);
      assertMatch(execPart!.body, /^\[1\/\d+\] clone: a new process in the container's PID namespace/m, "exec", text);
      assertMatch(execPart!.body, /execveat\(.*"sh", "-c", "echo from-exec; exit 4"/, "exec: the process's exec", text);
      assertIncludes(kill!.body, `kill(${pid}, 9) = 0`, "kill: the call", text);
      assertIncludes(del!.body, "remove the cgroup: ", "delete: the cgroup", text);
      // An OCI container's state is its runtime folder alone (gcr run's data folder it has not).
      assertMatch(
        del!.body,
        new RegExp(`^ {4}remove the container's state: ${o.root}/${id}$`, "m"),
        "delete: the state removed",
        text,
      );
      assertIncludes(del!.body, "poststop hook #0: /bin/sh -c exit 0", "delete: the poststop hook", text);
      assert(
        verbs.some((v) => v.command.endsWith(`state ${id}`) && v.body === "" && v.end.startsWith("0 ")),
        "state: one line in, one line out",
        text,
      );
      assertEquals(Deno.readDirSync(traces).toArray().map((e) => e.name), [`${id}.trace`], "one file, the container's");
    }),
);

Deno.test(
  named("--trace-dir: a refused create's error ends its part; an id that is not one names no file", SKIP),
  () =>
    withOci(async (o) => {
      const traces = join(o.work, "traces");
      const bundle = await o.bundle((c) => {
        c.linux.namespaces.push({ type: "time", path: "/proc/1/ns/time" });
        c.linux.namespaces.push({ type: "time" });
      });
      const id = o.newId();
      const created = await o.toFiles(["--trace-dir", traces, "create", "--bundle", bundle, id]);
      assertEquals(created.code, 1, "the create is refused", describe(created));
      const [part] = parts(readTextOr(join(traces, `${id}.trace`)));
      assert(part, "the refused create has its part", readTextOr(join(traces, `${id}.trace`)));
      const said = created.stderr.trim().replace(/^gcr: /, "");
      assertEquals(part.end.replace(/ +[\d.]+ ms$/, ""), `1: ${said}`, "its end says the error create printed");

      // gcr runs as root: a link planted at a trace file's name is neither followed nor created through.
      const victim = join(o.work, "victim");
      Deno.writeTextFileSync(join(o.work, "kept"), "kept\n");
      Deno.symlinkSync(victim, join(traces, "dangling.trace"));
      Deno.symlinkSync(join(o.work, "kept"), join(traces, "existing.trace"));
      // A FIFO nobody reads: opened as the file is, it would hold gcr until a reader came.
      const fifo = await run("mkfifo", [join(traces, "fifo.trace")]);
      assertEquals(fifo.code, 0, describe(fifo));
      for (const name of ["dangling", "existing", "fifo"]) {
        const linked = await o.gcr(["--trace-dir", traces, "state", name]);
        assertEquals(linked.code, 1, `state with ${name}.trace a symlink or a FIFO`, describe(linked));
        assertIncludes(
          linked.stderr,
          `${name}.trace is not a regular file of its own`,
          "said in one line",
          describe(linked),
        );
      }
      assert(!exists(victim), "no file made through a dangling link");
      assertEquals(readTextOr(join(o.work, "kept")), "kept\n", "nothing appended through a link");
      for (const name of ["dangling", "existing", "fifo"]) Deno.removeSync(join(traces, `${name}.trace`));

      const bad = await o.gcr(["--trace-dir", traces, "state", "../escaped"]);
      assertEquals(bad.code, 1, "state of a path is refused", describe(bad));
      assert(!exists(join(o.work, "escaped.trace")), "no file outside the trace folder");
      assertEquals(Deno.readDirSync(traces).toArray().length, 1, "and none inside it");
    }),
);
