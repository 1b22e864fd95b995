/**
 * Runs net/links.ts operations for tests/net/netlink_test.ts, which starts it
 * inside a network namespace of its own (`ip netns exec gcr-test-… deno run
 * -A netlink_script.ts STEP …`). Prints one JSON object; a failed operation
 * is reported as `{ "error": { "message", "code" } }` with exit status 0, so
 * the test can check error messages too.
 *
 * Steps:
 *   bridge-and-veth PEER_PID   gcr0 (10.88.0.1/16, up), veth pair gcrv0 - gcrc0 with the peer born in PEER_PID's netns
 *   configure-peer PEER_PID    through inNetns: rename gcrc0 → eth0, 10.88.0.2/16, lo and eth0 up, default via 10.88.0.1
 *   move PEER_PID              a second pair gcrv1 - gcrm1 made here, then gcrm1 moved into PEER_PID's netns
 *   duplicate                  createBridge("gcr0") again
 *   unreachable-route          addDefaultRoute("10.99.0.1"), a gateway on no subnet here
 *   index NAME                 linkIndex(NAME)
 *   delete NAME…               deleteLink(NAME) for each
 */
import { SyscallError } from "../../ffi/errno.ts";
import { inNetns, Links } from "../../net/links.ts";

const [step, ...args] = Deno.args;

function pid(): number {
  const value = Number(args[0]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${step}: a pid is needed, got ${args[0]}`);
  return value;
}

function attempt(fn: () => Record<string, unknown>): Record<string, unknown> {
  try {
    return fn();
  } catch (error) {
    if (error instanceof SyscallError) return { error: { message: error.message, code: error.code } };
    throw error;
  }
}

using host = Links.open();
const result = attempt(() => {
  switch (step) {
    case "bridge-and-veth": {
      host.createBridge("gcr0");
      host.addAddress("gcr0", "10.88.0.1/16");
      host.setUp("gcr0");
      host.createVethPair("gcrv0", "gcrc0", { peerNetnsPid: pid() });
      host.setMaster("gcrv0", "gcr0");
      host.setUp("gcrv0");
      return { bridge: host.linkIndex("gcr0"), veth: host.linkIndex("gcrv0") };
    }
    case "configure-peer": {
      const before = Deno.readLinkSync("/proc/thread-self/ns/net");
      const configured = inNetns(pid(), (peer) => {
        peer.renameLink("gcrc0", "eth0");
        peer.addAddress("eth0", "10.88.0.2/16");
        peer.setUp("lo");
        peer.setUp("eth0");
        peer.addDefaultRoute("10.88.0.1");
        return { eth0: peer.linkIndex("eth0") };
      });
      return { ...configured, before, after: Deno.readLinkSync("/proc/thread-self/ns/net") };
    }
    case "move":
      host.createVethPair("gcrv1", "gcrm1");
      host.moveToNetns("gcrm1", pid());
      return { moved: true };
    case "duplicate":
      host.createBridge("gcr0");
      return { created: true };
    case "unreachable-route":
      host.addDefaultRoute("10.99.0.1");
      return { added: true };
    case "index":
      return { index: host.linkIndex(args[0] ?? "") };
    case "delete":
      for (const name of args) host.deleteLink(name);
      return { deleted: args };
    default:
      throw new Error(`unknown step ${step}`);
  }
});
console.log(JSON.stringify(result));
