/**
 * rtnetlink (net/netlink.ts, net/links.ts) against the real kernel.
 *
 * Every change happens inside two network namespaces this test creates
 * (`ip netns add gcr-test-…`) and deletes in a finally: net/links.ts runs
 * in a Deno subprocess under `ip netns exec NS1` (tests/net/netlink_script.ts),
 * the second namespace is held by a `sleep` whose pid the script uses for
 * IFLA_NET_NS_PID and inNetns. The results are read back with `ip -n NS -j`;
 * the only traffic is ping between the two namespaces' own addresses.
 *
 * @module
 */
import { join } from "node:path";
import { IFLA, LAYOUT, NLM_F, NLMSG, RTM } from "../../ffi/constants.ts";
import { parseIpv4Cidr } from "../../net/links.ts";
import {
  encodeRequest,
  nestedAttribute,
  parseAttributes,
  parseError,
  parseMessages,
  stringAttribute,
  u32Attribute,
} from "../../net/netlink.ts";
import { describe, named, needs, run, Running } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertThrows } from "../helpers.ts";
import { exists } from "../../host/files.ts";
import { sleep } from "../../host/time.ts";

const SCRIPT = join(import.meta.dirname!, "netlink_script.ts");

Deno.test("netlink messages: header, padded attributes and nesting round-trip", () => {
  const body = [
    new Uint8Array(LAYOUT.ifinfomsg.size),
    stringAttribute(IFLA.IFNAME, "gcr0"), // 4 + 5 bytes, padded to 12
    nestedAttribute(IFLA.LINKINFO, stringAttribute(1, "veth"), u32Attribute(2, 1234)),
  ];
  const bytes = encodeRequest({ type: RTM.NEWLINK, flags: NLM_F.CREATE, body, operation: "test" }, 7);
  assertEquals(bytes.length, 16 + 16 + 12 + (4 + 12 + 8), "message length");
  const [message, ...rest] = parseMessages(bytes);
  assertEquals(rest.length, 0, "one message");
  assertEquals(message!.type, RTM.NEWLINK, "type");
  assertEquals(message!.seq, 7, "sequence number");
  assertEquals(message!.flags, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE, "flags");
  const attributes = parseAttributes(message!.payload.subarray(LAYOUT.ifinfomsg.size));
  assertEquals(new TextDecoder().decode(attributes.get(IFLA.IFNAME)), "gcr0\0", "IFLA_IFNAME");
  const info = parseAttributes(attributes.get(IFLA.LINKINFO)!);
  assertEquals(new TextDecoder().decode(info.get(1)), "veth\0", "nested kind");
  assertEquals(new DataView(info.get(2)!.buffer, info.get(2)!.byteOffset).getUint32(0, true), 1234, "nested u32");
});

Deno.test("netlink errors: errno and the extended-ack text of a capped NLMSG_ERROR", () => {
  const text = stringAttribute(1, "Unknown device type");
  const payload = new Uint8Array(LAYOUT.nlmsgerr.size + text.length);
  new DataView(payload.buffer).setInt32(0, -95, true);
  payload.set(text, LAYOUT.nlmsgerr.size);
  const parsed = parseError({ type: NLMSG.ERROR, flags: NLM_F.CAPPED | NLM_F.ACK_TLVS, seq: 1, payload });
  assertEquals(parsed, { errno: 95, text: "Unknown device type" }, "parsed error");
  assertEquals(parseIpv4Cidr("10.88.0.1/16").prefixLength, 16, "prefix length");
  for (const bad of ["10.88.0.1", "10.88.0/16", "10.88.0.256/16", "10.88.0.1/33"]) {
    assertThrows(() => parseIpv4Cidr(bad), Error, `${bad} is refused`);
  }
});

interface IpLink {
  ifname: string;
  ifindex: number;
  flags: string[];
  master?: string;
}
interface IpAddr extends IpLink {
  addr_info: { family: string; local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev: string;
}

async function ipJson<T>(ns: string, ...args: string[]): Promise<T[]> {
  const result = await run("ip", ["-n", ns, "-j", ...args]);
  assertEquals(result.code, 0, `ip ${args.join(" ")} in ${ns}`, describe(result));
  return JSON.parse(result.stdout) as T[];
}

async function links(ns: string): Promise<Map<string, IpLink>> {
  return new Map((await ipJson<IpLink>(ns, "link", "show")).map((link) => [link.ifname, link]));
}

async function addresses(ns: string, dev: string): Promise<string[]> {
  const [entry] = await ipJson<IpAddr>(ns, "addr", "show", "dev", dev);
  return (entry?.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`);
}

/** Runs one step of netlink_script.ts inside `ns`; returns its JSON. */
async function step(ns: string, ...args: string[]): Promise<Record<string, unknown>> {
  const result = await run("ip", ["netns", "exec", ns, Deno.execPath(), "run", "-A", SCRIPT, ...args], {
    timeoutMs: 30_000,
  });
  assertEquals(result.code, 0, `netlink_script ${args.join(" ")}`, describe(result));
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

async function ping(fromNs: string, address: string): Promise<void> {
  const result = await run("ip", ["netns", "exec", fromNs, "ping", "-c1", "-W1", address]);
  assertEquals(result.code, 0, `ping ${address} from ${fromNs}`, describe(result));
}

function netnsInode(path: string): number {
  const info = Deno.statSync(path);
  return info.ino ?? -1;
}

Deno.test(
  named(
    "rtnetlink: bridge, veth into a second netns, inNetns, addresses, route, ping, EEXIST, delete",
    needs("ip", "ping"),
  ),
  async (t) => {
    const suffix = crypto.randomUUID().slice(0, 8);
    const ns1 = `gcr-test-${suffix}a`;
    const ns2 = `gcr-test-${suffix}b`;
    const created: string[] = [];
    let holder: Running | undefined;
    try {
      for (const ns of [ns1, ns2]) {
        const result = await run("ip", ["netns", "add", ns]);
        assertEquals(result.code, 0, `ip netns add ${ns}`, describe(result));
        created.push(ns);
      }
      // The second namespace's process: its pid names the namespace for IFLA_NET_NS_PID and inNetns.
      holder = new Running("ip", ["netns", "exec", ns2, "sleep", "60"], { timeoutMs: 90_000 });
      const pid = holder.pid;
      const ns2Inode = netnsInode(`/run/netns/${ns2}`);
      for (let i = 0; i < 200 && !(exists(`/proc/${pid}`) && netnsInode(`/proc/${pid}/ns/net`) === ns2Inode); i++) {
        await sleep(10);
      }
      assertEquals(netnsInode(`/proc/${pid}/ns/net`), ns2Inode, "the holder process is in the second namespace");

      await t.step("bridge with an address, veth pair with the peer born in the second namespace", async () => {
        const out = await step(ns1, "bridge-and-veth", String(pid));
        assert(typeof out.bridge === "number" && out.bridge > 0, "linkIndex(gcr0) is an index", JSON.stringify(out));
        const inNs1 = await links(ns1);
        assert(inNs1.get("gcr0")?.flags.includes("UP"), "gcr0 exists and is up", JSON.stringify([...inNs1]));
        assertEquals(inNs1.get("gcr0")?.ifindex, out.bridge, "linkIndex agrees with ip");
        assertEquals(inNs1.get("gcrv0")?.master, "gcr0", "gcrv0 is enslaved to gcr0");
        assert(inNs1.get("gcrv0")?.flags.includes("UP"), "gcrv0 is up");
        assert(!inNs1.has("gcrc0"), "the peer is not in the first namespace");
        assertEquals(await addresses(ns1, "gcr0"), ["10.88.0.1/16"], "gcr0's address");
        assert((await links(ns2)).has("gcrc0"), "the peer was created in the second namespace");
      });

      await t.step("inNetns configures the second namespace from the first", async () => {
        const out = await step(ns1, "configure-peer", String(pid));
        assertEquals(out.after, out.before, "the JS thread is back in its own namespace after inNetns");
        const inNs2 = await links(ns2);
        assert(!inNs2.has("gcrc0") && inNs2.get("eth0")?.flags.includes("UP"), "renamed to eth0, up");
        assert(inNs2.get("lo")?.flags.includes("UP"), "lo is up");
        assertEquals(await addresses(ns2, "eth0"), ["10.88.0.2/16"], "eth0's address");
        const routes = await ipJson<IpRoute>(ns2, "route", "show");
        const defaults = routes.filter((route) => route.dst === "default");
        assertEquals(defaults.map((r) => [r.gateway, r.dev]), [["10.88.0.1", "eth0"]], "default route");
        assert(!(await links(ns1)).has("eth0"), "nothing was configured in the first namespace");
        assertEquals((await ipJson<IpRoute>(ns1, "route", "show")).filter((r) => r.dst === "default"), [], "ns1");
      });

      await t.step("traffic flows between the two namespaces over the bridge", async () => {
        await ping(ns2, "10.88.0.1");
        await ping(ns1, "10.88.0.2");
      });

      await t.step("moveToNetns moves an existing link into the second namespace", async () => {
        await step(ns1, "move", String(pid));
        assert(!(await links(ns1)).has("gcrm1"), "gcrm1 left the first namespace");
        assert((await links(ns2)).has("gcrm1"), "gcrm1 is in the second namespace");
      });

      await t.step(
        "errors: a duplicate name gives EEXIST naming the operation; the kernel's own text is kept",
        async () => {
          const out = await step(ns1, "duplicate");
          const error = out.error as { message: string; code: string } | undefined;
          assertEquals(error?.code, "EEXIST", "errno name", JSON.stringify(out));
          assertIncludes(error!.message, `RTM_NEWLINK (create bridge "gcr0"): EEXIST`, "message");
          const route = await step(ns1, "unreachable-route");
          const routeError = route.error as { message: string; code: string } | undefined;
          assertEquals(routeError?.code, "ENETUNREACH", "a gateway off every subnet", JSON.stringify(route));
          assertIncludes(routeError!.message, "gateway", "the kernel's extended-ack text is in the message");
        },
      );

      await t.step("deleteLink removes the bridge and both veth pairs", async () => {
        await step(ns1, "delete", "gcrv0", "gcrv1", "gcr0");
        assertEquals([...(await links(ns1)).keys()], ["lo"], "only lo is left in the first namespace");
        assertEquals([...(await links(ns2)).keys()], ["lo"], "the peers went with their pairs");
        const out = await step(ns1, "index", "gcr0");
        assertEquals((out.error as { code: string } | undefined)?.code, "ENODEV", "gcr0 is gone");
      });
    } finally {
      if (holder) {
        holder.kill("SIGKILL");
        await holder.finish().catch(() => {});
      }
      for (const ns of created) await run("ip", ["netns", "del", ns]);
    }
  },
);
