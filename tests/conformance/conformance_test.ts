/**
 * The OCI runtime-tools validation suite against gcr and against runc, side
 * by side (tests/conformance/runtime_tools.ts). What must hold: gcr passes
 * every test runc passes here, and the hook tests that can pass at all.
 * docs/conformance.md keeps the table of both, test by test, with why for
 * each that does not pass: every test must have a row there, and where this
 * run differs from the table the differences are printed (the table is this
 * project's machines'; another host's answers are its own).
 *
 * @module
 */
import { join } from "node:path";
import { GCR, missingPrograms, missingRoot, named, REPO } from "../fixtures.ts";
import { assertEquals, assertMatch } from "../helpers.ts";
import { buildSuite, missingGo, runTest, testNames, type TestResult } from "./runtime_tools.ts";

/**
 * The hook tests whose own logic a runtime can satisfy (`hooks` compares its
 * log with text its hooks never write; `prestart` wants the hooks run after
 * start, against config.md).
 */
const HOOK_TESTS = ["hooks_stdin", "poststart", "poststart_fail", "poststop", "poststop_fail", "prestart_fail"];

/** docs/conformance.md's rows: test → runc's and gcr's verdicts. */
function table(): Map<string, { runc: string; gcr: string }> {
  const rows = new Map<string, { runc: string; gcr: string }>();
  for (const line of Deno.readTextFileSync(join(REPO, "docs", "conformance.md")).split("\n")) {
    const cells = line.split("|").map((cell) => cell.trim());
    if (cells.length < 5 || !/^[a-z_]+$/.test(cells[1]!) || cells[1] === "test") continue;
    rows.set(cells[1]!, { runc: cells[2]!, gcr: cells[3]! });
  }
  return rows;
}

const shown = (r: TestResult) => (r.verdict === "pass-unchecked" ? "unchecked" : r.verdict);

Deno.test(
  named(
    "OCI runtime-tools: gcr passes every test runc passes, and the hook tests; docs/conformance.md lists them all",
    missingRoot() ?? missingGo() ?? missingPrograms("runc", "unshare", "timeout"),
  ),
  async () => {
    const suite = await buildSuite();
    const names = testNames(suite);
    const runc = new Map<string, TestResult>();
    const gcr = new Map<string, TestResult>();
    const runcPath = Deno.realPathSync(
      new TextDecoder().decode(new Deno.Command("sh", { args: ["-c", "command -v runc"] }).outputSync().stdout).trim(),
    );
    for (const name of names) {
      runc.set(name, await runTest(suite, runcPath, name));
      gcr.set(name, await runTest(suite, GCR, name));
    }
    const count = (results: Map<string, TestResult>, verdict: TestResult["verdict"]) =>
      [...results.values()].filter((r) => r.verdict === verdict).length;
    console.log(
      `    runtime-tools, ${names.length} tests: gcr ${count(gcr, "pass")} pass, ${
        count(gcr, "pass-unchecked")
      } unchecked; runc ${count(runc, "pass")} pass, ${count(runc, "pass-unchecked")} unchecked`,
    );

    const tail = (r: TestResult) => `${r.name} (ok=${r.ok} notok=${r.notOk} rc=${r.code}):\n${r.tap.slice(-1500)}`;
    const behind = names.filter((name) => runc.get(name)!.verdict !== "fail" && gcr.get(name)!.verdict === "fail");
    assertEquals(behind, [], "tests runc passes and gcr fails", behind.map((name) => tail(gcr.get(name)!)).join("\n"));
    const hooks = HOOK_TESTS.filter((name) => gcr.get(name)?.verdict === "fail");
    assertEquals(hooks, [], "hook tests gcr fails", hooks.map((name) => tail(gcr.get(name)!)).join("\n"));

    const rows = table();
    assertEquals(names.filter((name) => !rows.has(name)), [], "tests without a row in docs/conformance.md");
    for (const name of rows.keys()) {
      assertMatch(name, new RegExp(`^(${names.join("|")})$`), "a row for a test that exists");
    }
    const differences = names.flatMap((name) => {
      const row = rows.get(name)!;
      const now = { runc: shown(runc.get(name)!), gcr: shown(gcr.get(name)!) };
      return row.runc === now.runc && row.gcr === now.gcr
        ? []
        : [`${name}: table runc=${row.runc} gcr=${row.gcr}, this run runc=${now.runc} gcr=${now.gcr}`];
    });
    if (differences.length) {
      console.log(`    differences from docs/conformance.md:\n      ${differences.join("\n      ")}`);
    }
  },
);
