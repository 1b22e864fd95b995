// Unit tests of what gcr decides before anything runs: the command line,
// the environment, id plans, and the pipeline's shape. No containers here.
import { explain } from "../../commands/explain.ts";
import { parseRunArgs } from "../../commands/run_args.ts";
import { containerEnv } from "../../plan/run_plan.ts";
import { subordinateRange } from "../../plan/id_maps.ts";
import { isStaticElf } from "../../host/static_binary.ts";
import { containerSteps } from "../../steps/pipeline.ts";
import type { ContainerPlan } from "../../steps/plan.ts";
import { testPlan } from "../plans.ts";
import { assert, assertEquals, assertIncludes, assertMatch, assertNotIncludes, assertThrows } from "../helpers.ts";

Deno.test("run options stop at the image: the command's own flags pass through", () => {
  const args = parseRunArgs(["-q", "--trace", "-e", "A=1", "--env=B=2", "-w", "/etc", "busybox", "ls", "-l", "-q"]);
  assertEquals(args.image, "busybox");
  assertEquals(args.command, ["ls", "-l", "-q"]);
  assertEquals(args.env, ["A=1", "B=2"]);
  assertEquals([args.quiet, args.mode, args.workdir], [true, "trace", "/etc"]);
});

Deno.test("Go-style single-dash long options and the Go original's command line work", () => {
  assertEquals(parseRunArgs(["-trace", "-hostname", "box", "ubuntu", "bash"]).hostname, "box");
  const go = parseRunArgs(["ubuntu", "bash"]);
  assertEquals([go.image, go.command, go.mode, go.network], ["ubuntu", ["bash"], "run", "none"]);
  assertEquals(parseRunArgs(["busybox"]).command, ["sh"]);
});

Deno.test("bad options are refused with a message that names them", () => {
  assertThrows(() => parseRunArgs(["--bogus", "busybox"]), /unknown option --bogus/);
  assertThrows(() => parseRunArgs(["-e"]), /option -e needs a value/);
  assertThrows(() => parseRunArgs(["-w", "relative", "busybox"]), /must be absolute/);
  assertThrows(() => parseRunArgs(["--net", "overlay", "busybox"]), /unsupported network "overlay"/);
  assertThrows(() => parseRunArgs(["-p", "8080:80", "busybox"]), /add --net bridge/);
  assertThrows(() => parseRunArgs(["--hostname", "bad name", "busybox"]), /invalid hostname/);
  assertThrows(() => parseRunArgs([]), /missing <image>/);
});

Deno.test("the container environment: defaults, TERM from gcr's, -e overrides in order", () => {
  const term = Deno.env.get("TERM");
  Deno.env.set("TERM", "xterm-test");
  try {
    const env = containerEnv("abc", ["HOME=/home/x", "FOO=bar=baz"]);
    assertEquals(env, [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "HOSTNAME=abc",
      "HOME=/home/x",
      "TERM=xterm-test",
      "FOO=bar=baz",
    ]);
  } finally {
    if (term === undefined) Deno.env.delete("TERM");
    else Deno.env.set("TERM", term);
  }
});

Deno.test("subordinate ranges are found by user name or uid", () => {
  const text = "alice:100000:65536\n1001:200000:1000\n";
  assertEquals(subordinateRange(text, "alice", 1000), { start: 100000, count: 65536 });
  assertEquals(subordinateRange(text, "bob", 1001), { start: 200000, count: 1000 });
  assertEquals(subordinateRange(text, "carol", 1002), undefined);
});

function head(path: string): Uint8Array {
  const file = Deno.openSync(path);
  const buffer = new Uint8Array(4096);
  const n = file.readSync(buffer) ?? 0;
  file.close();
  return buffer.subarray(0, n);
}

Deno.test("a static ELF has no PT_INTERP: busybox-static is static, deno is dynamic", () => {
  assertEquals(isStaticElf(head("/bin/busybox")), true);
  assertEquals(isStaticElf(head(Deno.execPath())), false);
  assertEquals(isStaticElf(new TextEncoder().encode("#!/bin/sh\n")), false);
});

const plan = (overrides: Partial<ContainerPlan> = {}): ContainerPlan => testPlan(overrides);

Deno.test("the pipeline: ids are mapped before any mount, pivot before exec, exec last", () => {
  const names = containerSteps(plan()).map((s) => s.name);
  const at = (name: string) => names.indexOf(name);
  for (const name of ["clone", "map-ids", "make-mounts-private", "mount-proc", "pivot-root", "exec"]) {
    assert(at(name) >= 0, `missing step ${name}`);
  }
  assert(
    at("map-ids") < at("make-mounts-private") && at("make-mounts-private") < at("mount-overlay"),
    `wrong order: ${names.join(" ")}`,
  );
  assert(
    at("mount-sys") < at("pivot-root") && at("pivot-root") < at("detach-old-root"),
    `wrong order: ${names.join(" ")}`,
  );
  assertEquals(names.at(-1), "exec");
  assertEquals(names[0], "clone");
});

Deno.test("--net host: no loopback step, /sys bound read-only recursively", () => {
  const steps = containerSteps(plan({ network: "host" }));
  assertEquals(steps.some((s) => s.name === "bring-up-loopback"), false);
  const sys = steps.find((s) => s.name === "mount-sys")!;
  // Opened inside the root, bound as a detached tree made read-only all the way down, then attached.
  assertEquals(sys.child.map((c) => c.fn), ["syscall", "open_tree", "mount_setattr", "move_mount", "close", "close"]);
  const setattr = sys.child.find((c) => c.fn === "mount_setattr")!.show;
  for (
    const part of ["AT_RECURSIVE", "MOUNT_ATTR_RDONLY", "MOUNT_ATTR_NOSUID", "MOUNT_ATTR_NODEV", "MOUNT_ATTR_NOEXEC"]
  ) {
    assertIncludes(setattr, part, `mount_setattr lacks ${part}`);
  }
  const clone = steps[0]!.parent[0]!;
  assert(clone.op === "clone" && !clone.show.includes("NEWNET"), `unexpected clone: ${JSON.stringify(clone)}`);
});

Deno.test("single-id map: setgroups denied, devpts without gid=5, no setgroups call", () => {
  const steps = containerSteps(plan());
  const mapIds = steps.find((s) => s.name === "map-ids")!;
  assertEquals(mapIds.parent.map((op) => op.op === "write-proc-file" ? `${op.file}=${op.content.trim()}` : op.op), [
    "setgroups=deny",
    "uid_map=0 1000 1",
    "gid_map=0 1000 1",
    "log-identity",
  ]);
  assertEquals(mapIds.child.length, 0);
  const devpts = steps.find((s) => s.name === "mount-devpts")!.child[1]!.show;
  assertNotIncludes(devpts, "gid=5", "devpts is mounted without gid=5");
});

Deno.test("explain prints every step with its calls", () => {
  const text = explain(containerSteps(plan()));
  for (const expected of [/^ 1\. clone: /m, /child: pivot_root\("\.", "\."\)/, /gcr-exec: execvp\("sh", \{"sh"\}\)/]) {
    assertMatch(text, expected, `explain lacks ${expected}`);
  }
});
