/**
 * config.json's hooks, run by real `gcr create/start/delete` as an engine
 * runs them: each hook appends a line to a log in a host folder saying
 * which hook it is, the status and pid it read in the state on its stdin,
 * and the hostname of the UTS namespace it runs in (the container's is
 * `hooked`, so a hook in the container's namespaces says so). What is
 * checked is the order, the state, the namespace, and the spec's rules for
 * failures and timeouts.
 *
 * @module
 */
import { join } from "node:path";
import { describe, liveProcessesWith, named } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, lines } from "../helpers.ts";
import { readTextOr } from "../../host/files.ts";
import { type Json, type Oci, SKIP, withOci } from "./oci_env.ts";

const HOST = readTextOr("/proc/sys/kernel/hostname").trim();

/** A hook that logs `<kind> <status> <pid> <hostname>` to `log` (a host path, or one bound into the container). */
function logging(kind: string, log: string, extra = ""): Json {
  const script = 'state=$(cat); s=$(echo "$state" | sed -n \'s/.*"status":"\\([a-z]*\\)".*/\\1/p\'); ' +
    'p=$(echo "$state" | sed -n \'s/.*"pid":\\([0-9]*\\).*/\\1/p\'); ' +
    `echo "$0 $s $p $(cat /proc/sys/kernel/hostname)" >> "$LOG"; ${extra}`;
  return { path: "/bin/sh", args: ["sh", "-c", script, kind], env: [`LOG=${log}`, "PATH=/usr/bin:/bin"] };
}

/** A bundle whose container is `hooked` (its own UTS namespace) and sees the test's log folder at /hooklog. */
async function hookedBundle(o: Oci, logs: string, hooks: Json, args = ["true"]): Promise<string> {
  return await o.bundle((c) => {
    c.hostname = "hooked";
    c.process.args = args;
    c.mounts.push({ destination: "/hooklog", type: "bind", source: logs, options: ["rbind", "rw"] });
    c.hooks = hooks;
  });
}

Deno.test(
  named("hooks: the six kinds run in the spec's order, in their namespaces, each with the state on stdin", SKIP),
  () =>
    withOci(async (o) => {
      const logs = o.folder("logs");
      const log = join(logs, "log");
      const inside = "/hooklog/log";
      const bundle = await hookedBundle(o, logs, {
        poststop: [logging("poststop", log)],
        poststart: [logging("poststart", log)],
        startContainer: [logging("startContainer", inside)],
        createContainer: [logging("createContainer", log)],
        createRuntime: [logging("createRuntime", log)],
        prestart: [logging("prestart", log), logging("prestart-2", log)],
      });
      const id = o.newId();
      const { pid } = await o.createOk(id, bundle);
      assertEquals(
        lines(readTextOr(log)),
        [
          `prestart created ${pid} ${HOST}`,
          `prestart-2 created ${pid} ${HOST}`,
          `createRuntime created ${pid} ${HOST}`,
          `createContainer created ${pid} hooked`,
        ],
        "after create: the create-time hooks, prestart first, createContainer in the container",
      );
      await o.gcrOk(["start", id]);
      await o.waitStatus(id, "stopped");
      assertEquals(
        lines(readTextOr(log)).slice(4),
        [`startContainer created ${pid} hooked`, `poststart running ${pid} ${HOST}`],
        "start: startContainer in the container before the command, poststart after",
      );
      await o.gcrOk(["delete", id]);
      assertEquals(lines(readTextOr(log)).slice(6), [`poststop stopped ${pid} ${HOST}`], "delete: poststop");
    }),
);

Deno.test(
  named("hooks: a failing or slow create-time hook fails create, names the hook, leaves nothing; poststop runs", SKIP),
  () =>
    withOci(async (o) => {
      const logs = o.folder("logs");
      const log = join(logs, "log");
      const failing = await hookedBundle(o, logs, {
        prestart: [logging("prestart", log)],
        createRuntime: [
          logging("createRuntime", log),
          logging("createRuntime-2", log, "echo 'no network for you' >&2; exit 3"),
          logging("createRuntime-3", log),
        ],
        poststop: [logging("poststop", log)],
      }, ["sleep", "1000"]);
      const id = o.newId();
      const created = await o.create(id, failing);
      assert(created.code !== 0, "create fails", describe(created));
      assertEquals(lines(created.stderr).length, 1, "one line", describe(created));
      assertMatch(
        created.stderr,
        /error running createRuntime hook #1 \/bin\/sh: exit status 3: no network for you$/m,
        "it names the hook and says what it printed",
      );
      const seen = lines(readTextOr(log)).map((line) => line.split(" ")[0]);
      assertEquals(seen, ["prestart", "createRuntime", "createRuntime-2", "poststop"], "no hook after the failed one");
      o.assertGone(id);

      const slow = await hookedBundle(o, logs, {
        createRuntime: [{ path: "/bin/sleep", args: ["sleep", "99"], timeout: 1 }],
      }, ["sleep", "1000"]);
      const slowId = o.newId();
      const timedOut = await o.create(slowId, slow);
      assert(timedOut.code !== 0, "create fails", describe(timedOut));
      assertIncludes(timedOut.stderr, "error running createRuntime hook #0 /bin/sleep: timed out after 1 s");
      assertEquals(liveProcessesWith("sleep 99"), [], "the hook was killed");
      o.assertGone(slowId);
    }),
);

Deno.test(
  named("hooks: a failing startContainer hook fails start and stops the container; delete still runs poststop", SKIP),
  () =>
    withOci(async (o) => {
      const logs = o.folder("logs");
      const log = join(logs, "log");
      const bundle = await hookedBundle(o, logs, {
        startContainer: [logging("startContainer", "/hooklog/log", "exit 7")],
        poststart: [logging("poststart", log)],
        poststop: [logging("poststop", log)],
      }, ["sh", "-c", "echo command ran >> /hooklog/log"]);
      const id = o.newId();
      const { pid } = await o.createOk(id, bundle);
      const started = await o.gcr(["start", id]);
      assert(started.code !== 0, "start fails", describe(started));
      assertIncludes(started.stderr, "error running startContainer hook #0 /bin/sh: exit status 7", describe(started));
      assertEquals((await o.state(id)).status, "stopped", "the container is stopped");
      await o.gcrOk(["delete", id]);
      assertEquals(
        lines(readTextOr(log)),
        [`startContainer created ${pid} hooked`, `poststop stopped ${pid} ${HOST}`],
        "neither the command nor poststart ran; poststop did",
      );
    }),
);

Deno.test(
  named("hooks: failing poststart and poststop hooks are warnings in --log; the others and the container go on", SKIP),
  () =>
    withOci(async (o) => {
      const logs = o.folder("logs");
      const log = join(logs, "log");
      const runtimeLog = join(o.work, "runtime.log");
      const bundle = await hookedBundle(o, logs, {
        poststart: [{ path: "/bin/false", args: ["false"] }, logging("poststart-2", log)],
        poststop: [{ path: "/bin/false", args: ["false"] }, logging("poststop-2", log)],
      }, ["sh", "-c", "sleep 0.2; echo command ran >> /hooklog/log"]);
      const id = o.newId();
      const { pid } = await o.createOk(id, bundle);
      const withLog = ["--log", runtimeLog, "--log-format", "json"];
      await o.gcrOk([...withLog, "start", id]);
      await o.waitStatus(id, "stopped");
      await o.gcrOk([...withLog, "delete", id]);
      assertEquals(
        lines(readTextOr(log)),
        [`poststart-2 running ${pid} ${HOST}`, "command ran", `poststop-2 stopped ${pid} ${HOST}`],
        "each second hook ran, and the command",
      );
      const warnings = lines(readTextOr(runtimeLog)).map((line) => JSON.parse(line));
      assertEquals(warnings.map((w) => w.level), ["warning", "warning"], readTextOr(runtimeLog));
      assertEquals(warnings[0].msg, "error running poststart hook #0 /bin/false: exit status 1");
      assertEquals(warnings[1].msg, "error running poststop hook #0 /bin/false: exit status 1");
    }),
);

Deno.test(
  named("hooks: explain create and create --trace show them, where and how each will run", SKIP),
  () =>
    withOci(async (o) => {
      const logs = o.folder("logs");
      const bundle = await hookedBundle(o, logs, {
        prestart: [{ path: "/bin/sh", args: ["sh", "-c", "true"], timeout: 5 }],
        createContainer: [{ path: "/bin/true" }],
        poststop: [{ path: "/bin/true", args: ["true", "bye"] }],
      });
      const prestart = `prestart[0]: /bin/sh as {"sh" "-c" "true"}, the state JSON on stdin, in gcr's namespaces, ` +
        `from ${bundle}, at most 5 s`;
      const explained = await o.gcr(["explain", "create", "--bundle", bundle]);
      assertEquals(explained.code, 0, "explain create", describe(explained));
      assertMatch(explained.stdout, /^\d+\. run-hooks: /m, "a step of the pipeline");
      assertIncludes(explained.stdout, `gcr:   ${prestart}`);
      assertMatch(
        explained.stdout,
        /gcr: {3}createContainer\[0\]: \/bin\/true as \{"\/bin\/true"\}, .* in the container's namespaces/,
      );
      assertIncludes(explained.stdout, `gcr delete: poststop[0]: /bin/true as {"true" "bye"}`);
      assert(
        explained.stdout.indexOf("run-hooks") < explained.stdout.indexOf("pivot-root"),
        "before the pivot",
        explained.stdout,
      );

      const id = o.newId();
      const traced = await o.toFiles(["create", "--trace", "--bundle", bundle, id]);
      assertEquals(traced.code, 0, "create --trace", describe(traced));
      assertMatch(traced.stderr, /^\[\d+\/\d+\] run-hooks: /m, "the step, as it runs");
      assertIncludes(traced.stderr, `    gcr: ${prestart}`);
    }),
);
