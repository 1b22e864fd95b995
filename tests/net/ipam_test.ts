/**
 * net/ipam.ts: order, reuse after release, stale leases of dead owners, and
 * several processes allocating at once without a duplicate. No network is
 * touched: the allocator only reads and writes its state folder.
 *
 * @module
 */
import { join } from "node:path";
import { Ipam } from "../../net/ipam.ts";
import { describe, Running } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertThrows } from "../helpers.ts";

const SCRIPT = join(import.meta.dirname!, "ipam_script.ts");

Deno.test("ipam: skips network and gateway, one address per container, reuses a released one", () => {
  const stateDir = Deno.makeTempDirSync({ prefix: "gcr-ipam-" });
  try {
    const ipam = new Ipam({ stateDir });
    const a = ipam.allocate("aaa");
    assertEquals([a.address, a.cidr, a.gateway, a.pid], ["10.88.0.2", "10.88.0.2/16", "10.88.0.1", Deno.pid], "a");
    assertEquals(ipam.allocate("bbb").address, "10.88.0.3", "the next free address");
    assertEquals(ipam.allocate("aaa").address, "10.88.0.2", "asking again returns the same lease");
    assertEquals(new Ipam({ stateDir }).leases().map((l) => l.containerId).sort(), ["aaa", "bbb"], "persisted");
    assertEquals(ipam.release("aaa"), true, "released");
    assertEquals(ipam.release("aaa"), false, "nothing left to release");
    assertEquals(ipam.allocate("ccc").address, "10.88.0.2", "a released address is handed out again");
    assertIncludes(
      assertThrows(() => new Ipam({ stateDir, subnet: "10.88.0.1/16" })).message,
      "host bits",
      "bad subnet",
    );
    assertIncludes(
      assertThrows(() => ipam.allocate("ddd", 0x3fffffff)).message,
      "does not exist",
      "an owner that is not there",
    );
  } finally {
    Deno.removeSync(stateDir, { recursive: true });
  }
});

Deno.test("ipam: a full subnet refuses, and leases of a dead owner are reclaimed", async () => {
  const stateDir = Deno.makeTempDirSync({ prefix: "gcr-ipam-" });
  // The owner: a process this test starts and later kills, by its pid.
  const owner = new Running("sleep", ["60"], { timeoutMs: 90_000 });
  try {
    const ipam = new Ipam({ stateDir, subnet: "10.89.0.0/29" }); // .2 … .6: five addresses
    const addresses = ["c1", "c2", "c3", "c4", "c5"].map((id) => ipam.allocate(id, owner.pid).address);
    assertEquals(addresses, ["10.89.0.2", "10.89.0.3", "10.89.0.4", "10.89.0.5", "10.89.0.6"], "all five");
    assertIncludes(assertThrows(() => ipam.allocate("c6")).message, "No free address in 10.89.0.0/29", "full");
    owner.kill("SIGKILL");
    await owner.finish().catch(() => {});
    assertEquals(ipam.allocate("c6").address, "10.89.0.2", "the dead owner's addresses are free again");
    assertEquals(ipam.leases().map((lease) => lease.containerId), ["c6"], "stale leases were dropped");
  } finally {
    owner.kill("SIGKILL");
    await owner.finish().catch(() => {});
    Deno.removeSync(stateDir, { recursive: true });
  }
});

Deno.test("ipam: six processes allocating at once never share an address", async () => {
  const stateDir = Deno.makeTempDirSync({ prefix: "gcr-ipam-" });
  try {
    const processes = 6;
    const each = 25;
    const workers = Array.from(
      { length: processes },
      (_, i) =>
        new Running(Deno.execPath(), ["run", "-A", SCRIPT, stateDir, `p${i}`, String(each), String(Deno.pid)], {
          timeoutMs: 60_000,
        }),
    );
    const results = await Promise.all(workers.map((worker) => worker.finish()));
    const all: Record<string, string> = {};
    for (const result of results) {
      assertEquals(result.code, 0, "an allocator process", describe(result));
      Object.assign(all, JSON.parse(result.stdout));
    }
    const addresses = Object.values(all);
    assertEquals(addresses.length, processes * each, "every allocation answered");
    assertEquals(new Set(addresses).size, addresses.length, "no address handed out twice");
    const leases = new Ipam({ stateDir }).leases();
    assertEquals(leases.length, processes * each, "every lease is in the state");
    assert(leases.every((lease) => all[lease.containerId] === lease.address), "the state matches the answers");
  } finally {
    Deno.removeSync(stateDir, { recursive: true });
  }
});
