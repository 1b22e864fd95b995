/**
 * ./gcr's delete without Deno (launch/gcr.S, try_native): it runs a
 * container's delete plan (commands/delete_plan.ts) when the arguments are an
 * engine's delete and the plan covers what it finds, and otherwise leaves
 * everything to Deno's delete, as it was. In a checkout of stand-ins
 * (launcher_checkout.ts): the stand-in "deno" printing is how a case shows
 * that the launcher declined; folders made by the test stand in for cgroups.
 *
 * @module
 */
import { join } from "node:path";
import { containerPaths } from "../../state/paths.ts";
import type { ContainerRecord } from "../../state/records.ts";
import { deletePlan, deletePlanPath, writeDeletePlan } from "../../commands/delete_plan.ts";
import { exists } from "../../host/files.ts";
import { assert, assertEquals } from "../helpers.ts";
import { checkout, printedArgs, runLauncher } from "./launcher_checkout.ts";

/** A pid no process can have (above any pid_max): its /proc folder never exists. */
const NO_PID = 2_147_483_647;

interface Planned {
  root: string;
  id: string;
  /** The container's "cgroup" folders, their shared gcr parents, and a sibling that keeps one parent in use. */
  own: string[];
  parents: string[];
  sibling: string;
  /** Everything the plan removes, and what it must leave. */
  removed: string[];
  remove(): void;
}

/** A runtime folder with a container's record, FIFO stand-ins and delete plan, as create leaves them. */
function planned(initPid = NO_PID, id = "c-1.a_b+c"): Planned {
  const base = Deno.makeTempDirSync({ prefix: "gcr-native-delete-" });
  const root = join(base, "run");
  const own = ["a", "b"].map((hierarchy) => join(base, "cg", hierarchy, "gcr", id));
  for (const dir of own) Deno.mkdirSync(dir, { recursive: true });
  const sibling = join(base, "cg", "b", "gcr", "other");
  Deno.mkdirSync(sibling);
  const paths = containerPaths(id, base, root);
  Deno.mkdirSync(paths.run, { recursive: true });
  const record = { id, initPid, initStart: "1", cgroups: own } as unknown as ContainerRecord;
  Deno.writeTextFileSync(paths.record, JSON.stringify(record));
  Deno.writeTextFileSync(paths.reportFifo, "");
  const plan = deletePlan(record, paths);
  assert(plan, "a record without hooks or host mounts has a plan");
  writeDeletePlan(paths, plan);
  return {
    root,
    id,
    own,
    parents: own.map((dir) => join(dir, "..")),
    sibling,
    removed: [...own, join(base, "cg", "a", "gcr"), paths.record, paths.reportFifo, deletePlanPath(paths), paths.run],
    remove: () => Deno.removeSync(base, { recursive: true }),
  };
}

Deno.test("./gcr deletes a stopped container by its plan, without Deno, for each form of an engine's delete", async () => {
  const c = checkout();
  const forms: ((p: Planned) => [string[], Record<string, string>])[] = [
    (p) => [["--root", p.root, "delete", p.id], {}],
    (p) => [["--root=" + p.root, "--log", "/x/log.json", "--log-format", "json", "delete", "--force", p.id], {}],
    (p) => [["--systemd-cgroup", "--log-format=json", "--root", p.root, "delete", "-f", p.id], {}],
    (p) => [["--log=/x/log", "delete", p.id], { GCR_RUN: p.root }],
    (p) => [["--root", "/elsewhere", "--root", p.root, "delete", p.id], {}],
  ];
  try {
    for (const form of forms) {
      const p = planned();
      try {
        const [args, env] = form(p);
        assertEquals(await runLauncher(c, args, env), "", `${args.join(" ")}: no stand-in ran`);
        for (const path of p.removed) assert(!exists(path), `${path} removed (${args.join(" ")})`);
        assert(exists(p.sibling), "the other container's cgroup stays, and so its shared parent");
      } finally {
        p.remove();
      }
    }
    const extra = planned();
    try {
      Deno.writeTextFileSync(join(extra.root, extra.id, "container.json.tmp-1"), "");
      const printed = await runLauncher(c, ["--root", extra.root, "delete", extra.id]);
      assertEquals(printed.split("\n")[0], "deno", "a file the plan does not list: the folder's removal is Deno's");
      for (const path of extra.own) assert(!exists(path), `${path} removed before that (Deno's delete finds it gone)`);
      assert(exists(join(extra.root, extra.id, "container.json.tmp-1")), "the folder and that file left for Deno");
    } finally {
      extra.remove();
    }
    const partly = planned();
    try {
      Deno.removeSync(join(partly.root, partly.id, "container.json"));
      Deno.removeSync(partly.own[0]!);
      assertEquals(
        await runLauncher(c, ["--root", partly.root, "delete", partly.id]),
        "",
        "what is gone already is no error",
      );
      for (const path of partly.removed) assert(!exists(path), `${path} removed`);
    } finally {
      partly.remove();
    }
  } finally {
    c.remove();
  }
});

/** Replaces the container's plan with these ops after the header. */
function writePlan(p: Planned, ops: string[]): void {
  Deno.writeTextFileSync(
    join(p.root, p.id, "delete.plan"),
    ["gcr-delete-plan 1", ...ops].map((f) => `${f}\0`).join(""),
  );
}

Deno.test("./gcr leaves a delete its plan does not cover to Deno, with the arguments as given", async () => {
  const c = checkout();
  try {
    const declines = async (
      why: string,
      args: (p: Planned) => string[],
      change: (p: Planned) => void = () => {},
      env: Record<string, string> = {},
      initPid?: number,
    ) => {
      const p = planned(initPid);
      try {
        change(p);
        const printed = await runLauncher(c, args(p), env);
        assertEquals(printed.split("\n")[0], "deno", `${why}: Deno's delete`);
        assert(printed.includes(printedArgs(args(p))), `${why}: the arguments as given`, printed);
        // Nothing removed: each of these is found before the first op runs.
        for (const path of p.removed.filter((path) => !path.endsWith("/delete.plan"))) {
          assert(exists(path), `${why}: ${path} still there`);
        }
      } finally {
        p.remove();
      }
    };
    const del = (p: Planned) => ["--root", p.root, "delete", p.id];
    await declines("the init's pid is a live process", del, () => {}, {}, Deno.pid);
    await declines("a process is left in the cgroup", del, (p) => Deno.writeTextFileSync(join(p.own[0]!, "f"), ""));
    await declines("no plan (a create that did not finish)", del, (p) => {
      Deno.removeSync(join(p.root, p.id, "delete.plan"));
    });
    await declines("another format", del, (p) => {
      const file = join(p.root, p.id, "delete.plan");
      Deno.writeTextFileSync(file, Deno.readTextFileSync(file).replace("gcr-delete-plan 1", "gcr-delete-plan 2"));
    });
    await declines("a path with /.. after good ops", del, (p) => writePlan(p, [`C${p.own[0]}`, `D${p.root}/../x`]));
    await declines("a path with /./", del, (p) => writePlan(p, [`C${p.own[0]}`, `F${p.root}/./x`]));
    await declines("a relative path", del, (p) => writePlan(p, [`C${p.own[0]}`, "Dx"]));
    await declines("an op it does not know", del, (p) => writePlan(p, [`C${p.own[0]}`, "X/tmp"]));
    await declines("an empty field", del, (p) => writePlan(p, [`C${p.own[0]}`, ""]));
    await declines("a plan of its header alone", del, (p) => writePlan(p, []));
    await declines("a plan larger than 16 KB", del, (p) => writePlan(p, Array(5000).fill("P/x")));
    await declines("a plan that is a symlink", del, (p) => {
      const file = join(p.root, p.id, "delete.plan");
      Deno.renameSync(file, `${file}.real`);
      Deno.symlinkSync(`${file}.real`, file);
    });
    await declines("--trace-dir (Deno's delete traces each op)", (p) => ["--trace-dir", "/t", ...del(p)]);
    await declines("--debug, an option it does not take", (p) => ["--debug", ...del(p)]);
    await declines("--rootless", (p) => ["--rootless", "true", ...del(p)]);
    await declines("--rootlessx, an option --root begins", (p) => ["--rootlessx", ...del(p)]);
    await declines("--force=true", (p) => ["--root", p.root, "delete", "--force=true", p.id]);
    await declines("an argument after the id", (p) => [...del(p), "x"]);
    await declines("another verb", (p) => ["--root", p.root, "state", p.id]);
    await declines("an id that is a path", (p) => ["--root", p.root, "delete", `../run/${p.id}`]);
    await declines("an id starting with a dot", (p) => ["--root", p.root, "delete", `.${p.id}`]);
    await declines("an id of 129 characters", (p) => ["--root", p.root, "delete", "a".repeat(129)]);
    await declines("a relative --root", (p) => ["--root", p.root.slice(1), "delete", p.id]);
    await declines("--root with a dot folder", (p) => ["--root", `${p.root}/.`, "delete", p.id]);
    await declines("--root without its value", () => ["--root"]);
    await declines("$GCR_STATE without --root (its run folder is Deno's to find)", (p) => ["delete", p.id], () => {}, {
      GCR_STATE: "/s",
    });
  } finally {
    c.remove();
  }
});
