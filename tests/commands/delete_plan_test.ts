/**
 * The delete plan (commands/delete_plan.ts): which containers get one, its
 * ops in their order, the file's round trip and what a reader refuses, and
 * Deno's run of it (an op that finds a process stops it; a parent in use is
 * left). Folders made by the test stand in for cgroups.
 *
 * @module
 */
import { join } from "node:path";
import { containerPaths } from "../../state/paths.ts";
import type { ContainerRecord } from "../../state/records.ts";
import {
  DELETE_PLAN_HEADER,
  deletePlan,
  deletePlanPath,
  readDeletePlan,
  runDeletePlan,
  writeDeletePlan,
} from "../../commands/delete_plan.ts";
import { exists } from "../../host/files.ts";
import { assert, assertEquals } from "../helpers.ts";

function record(fields: Partial<ContainerRecord>): ContainerRecord {
  return { id: "c1", initPid: 42, initStart: "7", ...fields } as unknown as ContainerRecord;
}

Deno.test("delete plan: the ops of a stopped container, in order; none for hooks, host mounts or no init", () => {
  const paths = containerPaths("c1", "/var/lib/gcr", "/run/gcr");
  const cgroups = [
    "/sys/fs/cgroup/cpu/gcr/c1",
    "/sys/fs/cgroup/memory/pod/c1",
    "/sys/fs/cgroup/memory/pod",
  ];
  assertEquals(deletePlan(record({ cgroups }), paths), [
    { op: "G", path: "/proc/42" },
    { op: "C", path: "/sys/fs/cgroup/cpu/gcr/c1" },
    { op: "C", path: "/sys/fs/cgroup/memory/pod/c1" },
    { op: "P", path: "/sys/fs/cgroup/memory/pod" },
    { op: "P", path: "/sys/fs/cgroup/cpu/gcr" },
    { op: "F", path: "/run/gcr/c1/start.fifo" },
    { op: "F", path: "/run/gcr/c1/report.fifo" },
    { op: "F", path: "/run/gcr/c1/start.plan" },
    { op: "F", path: "/run/gcr/c1/started" },
    { op: "F", path: "/run/gcr/c1/start.report" },
    { op: "F", path: "/run/gcr/c1/container.json" },
    { op: "F", path: "/run/gcr/c1/delete.plan" },
    { op: "D", path: "/run/gcr/c1" },
  ], "the init's pid, the own cgroup folders, the parents deepest first, the runtime folder's files, the folder");
  const hook = { path: "/bin/true", args: [], env: [] };
  assertEquals(deletePlan(record({ hooks: { poststop: [hook] } as ContainerRecord["hooks"] }), paths), undefined);
  assertEquals(deletePlan(record({ hostMounts: ["/rootfs"] }), paths), undefined, "a mount to detach: Deno's");
  assertEquals(deletePlan(record({ initPid: undefined }), paths), undefined, "no init (a create that did not end)");
  assertEquals(deletePlan(record({ cgroups: ["/sys/fs/cgroup/../x/c1"] }), paths), undefined, "a path with ..");
  assertEquals(deletePlan(record({ cgroups: ["cpu/c1"] }), paths), undefined, "a relative path");
});

Deno.test("delete plan: written and read back; a reader refuses what it does not know", () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-delete-plan-" });
  try {
    const paths = containerPaths("c1", dir, dir);
    Deno.mkdirSync(paths.run);
    const plan = deletePlan(record({ cgroups: [`${dir}/cg/gcr/c1`] }), paths)!;
    writeDeletePlan(paths, plan);
    assertEquals(readDeletePlan(paths), plan, "the same ops");
    assertEquals(
      Deno.readTextFileSync(deletePlanPath(paths)).split("\0").slice(0, 3),
      [DELETE_PLAN_HEADER, "G/proc/42", `C${dir}/cg/gcr/c1`],
      "NUL-terminated fields: the header, then a letter and a path each",
    );
    assertEquals(Deno.statSync(deletePlanPath(paths)).mode! & 0o777, 0o600, "the plan is its owner's alone");
    const refuses = (text: string, why: string) => {
      Deno.writeTextFileSync(deletePlanPath(paths), text);
      assertEquals(readDeletePlan(paths), undefined, why);
    };
    refuses("gcr-delete-plan 2\0G/proc/1\0", "another format");
    refuses(`${DELETE_PLAN_HEADER}\0X/tmp\0`, "an op it does not know");
    refuses(`${DELETE_PLAN_HEADER}\0D/run/gcr/../x\0`, "a path with /..");
    refuses(`${DELETE_PLAN_HEADER}\0Fx\0`, "a relative path");
    refuses(`${DELETE_PLAN_HEADER}\0\0`, "an empty field");
    refuses(`${DELETE_PLAN_HEADER}\0G/proc/1`, "a last field without its NUL");
    Deno.removeSync(deletePlanPath(paths));
    assertEquals(readDeletePlan(paths), undefined, "no plan");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("delete plan: Deno's run removes each, leaves a parent in use, and stops where a folder is not empty", () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-delete-plan-" });
  try {
    const paths = containerPaths("c1", dir, join(dir, "run"));
    Deno.mkdirSync(paths.run, { recursive: true });
    Deno.writeTextFileSync(paths.record, "{}");
    const own = [join(dir, "a", "gcr", "c1"), join(dir, "b", "gcr", "c1")];
    for (const folder of own) Deno.mkdirSync(folder, { recursive: true });
    Deno.mkdirSync(join(dir, "b", "gcr", "other"));
    const plan = deletePlan(record({ cgroups: own }), paths)!;
    writeDeletePlan(paths, plan);

    Deno.writeTextFileSync(join(own[1]!, "busy"), "");
    assertEquals(runDeletePlan(plan), { op: "C", path: own[1]! }, "stopped at the folder that is not empty");
    assert(!exists(own[0]!) && exists(paths.record), "what came before it is done, nothing after it");

    Deno.removeSync(join(own[1]!, "busy"));
    assertEquals(runDeletePlan(plan), "done", "run again, it finishes: every op may be repeated");
    for (const gone of [...own, join(dir, "a", "gcr"), paths.run]) assert(!exists(gone), `${gone} removed`);
    assert(exists(join(dir, "b", "gcr", "other")), "another container's folder, and so its parent, stay");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
