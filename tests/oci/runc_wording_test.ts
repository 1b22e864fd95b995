/**
 * gcr's answers to what engines ask of missing, created, running, paused
 * and stopped containers, beside runc's for the same bundle: the same exit
 * status and runc's own words in the message, since engines match on them
 * (containerd's runc shim: `container not running`, `does not exist`;
 * podman: `does not exist`).
 *
 * @module
 */
import { join } from "node:path";
import { describe, missingPrograms, named, type RunResult } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, waitFor } from "../helpers.ts";
import { type Both, both, createBoth, type Oci, SKIP, withOci } from "./oci_env.ts";

/** runc's message in its log line (`level=error msg="…"`). */
function runcMessage(result: RunResult): string {
  return result.stderr.match(/msg="((?:[^"\\]|\\.)*)"/)?.[1]?.replace(/\\"/g, '"') ?? "";
}

/** runc's exit status and words; `runcOnly`: a tail of runc's message for an option gcr does not have. */
function assertSame(label: string, results: { runc: RunResult; gcr: RunResult }, runcOnly = ""): void {
  const { runc, gcr } = results;
  assertEquals(gcr.code, runc.code, `${label}: exit status as runc's`, `${describe(runc)}\n${describe(gcr)}`);
  const words = runcMessage(runc).replace(runcOnly, "");
  if (runc.code !== 0) {
    // An empty message (runc's log line not matched) would make the check below pass for any words.
    assert(words !== "", `${label}: runc's message is read from its error line`, describe(runc));
    assertIncludes(gcr.stderr, words, `${label}: runc's words`, `${describe(runc)}\n${describe(gcr)}`);
  }
}

/** A test of gcr beside runc: an OCI environment, runc's own --root in it, and both runtimes' verbs. */
function besideRunc(name: string, fn: (o: Oci, runcRoot: string, verbs: Both) => Promise<void>): void {
  Deno.test(named(name, SKIP ?? missingPrograms("runc")), () =>
    withOci((o) => {
      const runcRoot = o.folder("runc-root");
      return fn(o, runcRoot, both(o, runcRoot));
    }));
}

besideRunc(
  "runc's exit statuses and words for state, start, kill, pause, resume, exec, update and delete, in every state",
  async (o, runcRoot, verbs) => {
    const bundle = await o.bundle((c) => (c.process.args = ["sleep", "1000"]));
    const process = join(o.work, "process.json");
    const env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"];
    Deno.writeTextFileSync(process, JSON.stringify({ args: ["true"], cwd: "/", env, user: { uid: 0, gid: 0 } }));
    const id = o.newId();

    assertSame("state of a missing container", await verbs(["state", id]));
    assertSame("delete of a missing container", await verbs(["delete", id]));
    assertSame("delete --force of a missing container", await verbs(["delete", "--force", id]));
    assertSame("kill of a missing container", await verbs(["kill", id, "9"]));
    assertSame("start of a missing container", await verbs(["start", id]));
    assertSame("pause of a missing container", await verbs(["pause", id]));
    assertSame("resume of a missing container", await verbs(["resume", id]));
    // Without --process, `exec NAME CMD` of a name that is no OCI container is gcr's own (Docker's) form.
    assertSame("exec --process of a missing container", await verbs(["exec", "--process", process, id]));
    const update = ["update", "--pids-limit", "10", id];
    assertSame("update of a missing container", await verbs(update));

    assertSame("create", await createBoth(o, runcRoot, bundle, id));
    assertSame("resume of a created container", await verbs(["resume", id]));
    assertSame("update of a created container", await verbs(update));
    assertSame("exec --process in a created container", await verbs(["exec", "--process", process, id]));

    assertSame("start", await verbs(["start", id]));
    assertSame("start of a running container", await verbs(["start", id]));
    assertSame("resume of a running container", await verbs(["resume", id]));
    assertSame("delete of a running container", await verbs(["delete", id]));

    assertSame("pause", await verbs(["pause", id]));
    assertSame("pause of a paused container", await verbs(["pause", id]));
    assertSame("start of a paused container", await verbs(["start", id]));
    assertSame(
      "exec --process in a paused container",
      await verbs(["exec", "--process", process, id]),
      " (use --ignore-paused to override)",
    );
    assertSame("delete of a paused container", await verbs(["delete", id]));
    assertSame("state of a paused container", await verbs(["state", id]));
    assertSame("exec in a paused container", await verbs(["exec", id, "true"]), " (use --ignore-paused to override)");
    assertSame("update of a paused container", await verbs(update));
    assertSame("resume", await verbs(["resume", id]));

    assertSame("kill", await verbs(["kill", id, "KILL"]));
    await waitFor("both to report the container stopped", async () => {
      const states = await verbs(["state", id]);
      return states.runc.stdout.includes('"stopped"') && states.gcr.stdout.includes('"stopped"') || undefined;
    });
    assertSame("kill of a stopped container", await verbs(["kill", id, "9"]));
    assertSame("kill --all of a stopped container", await verbs(["kill", "--all", id, "9"]));
    assertSame("start of a stopped container", await verbs(["start", id]));
    assertSame("pause of a stopped container", await verbs(["pause", id]));
    assertSame("update of a stopped container", await verbs(update));
    assertSame("exec --process in a stopped container", await verbs(["exec", "--process", process, id]));
    assertSame("exec in a stopped container", await verbs(["exec", id, "true"]));
    assertSame("delete", await verbs(["delete", id]));
    assertSame("state after delete", await verbs(["state", id]));
  },
);

besideRunc(
  "a paused container ends by kill 9 and by delete --force, as runc's does (a frozen cgroup holds SIGKILL until thawed)",
  async (o, runcRoot, verbs) => {
    const bundle = await o.bundle((c) => (c.process.args = ["sleep", "1000"]));
    const status = (result: RunResult) => result.code === 0 ? JSON.parse(result.stdout).status : "gone";

    const killed = o.newId();
    assertSame("create", await createBoth(o, runcRoot, bundle, killed));
    assertSame("start", await verbs(["start", killed]));
    assertSame("pause", await verbs(["pause", killed]));
    assertSame("kill 9 of a paused container", await verbs(["kill", killed, "9"]));
    let seen = "";
    await waitFor(`both to report the killed container stopped (seen: ${seen})`, async () => {
      const states = await verbs(["state", killed]);
      seen = `runc ${status(states.runc)}, gcr ${status(states.gcr)}`;
      return status(states.runc) === "stopped" && status(states.gcr) === "stopped" || undefined;
    }).catch((error) => {
      throw new Error(`${error.message}; last seen: ${seen}`);
    });
    assertSame("delete of the killed container", await verbs(["delete", killed]));

    const forced = o.newId();
    assertSame("create", await createBoth(o, runcRoot, bundle, forced));
    assertSame("start", await verbs(["start", forced]));
    assertSame("pause", await verbs(["pause", forced]));
    assertSame("delete --force of a paused container", await verbs(["delete", "--force", forced]));
    const after = await verbs(["state", forced]);
    assertEquals([status(after.runc), status(after.gcr)], ["gone", "gone"], "both removed", describe(after.gcr));
    assertSame("state after delete --force", after);
  },
);

besideRunc(
  "create of a command that is missing or not executable fails as runc's does, with its words",
  async (o, runcRoot, verbs) => {
    for (const command of ["/nonexistent", "nonexistent", "/etc/passwd", "/etc", "../../bin/nonexistent"]) {
      const bundle = await o.bundle((c) => (c.process.args = [command]));
      const id = o.newId();
      const results = await createBoth(o, runcRoot, bundle, id);
      // runc names itself before its words; gcr's are the rest.
      assertSame(`create of ${command}`, results, "runc create failed: ");
      assertEquals(results.gcr.code, 1, `gcr create of ${command} fails`, describe(results.gcr));
      assertSame(`state after the failed create of ${command}`, await verbs(["state", id]));
      await verbs(["delete", "--force", id]);
    }
  },
);
