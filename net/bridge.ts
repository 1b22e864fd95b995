/**
 * `--net bridge`: the container's network namespace joined to a `gcr0`
 * bridge by a veth pair, an address from the allocator (ipam.ts), a default
 * route through the bridge, outbound NAT and `-p` published ports. Links go
 * through rtnetlink (links.ts); NAT through nftables, one table per
 * container, so that its rules go with one `nft delete table`; the
 * container's forwarded traffic let through iptables' FORWARD, whose policy
 * dockerd sets to DROP (forward.ts).
 *
 * nftables is driven through the `nft` program: its netlink protocol
 * (nf_tables batches of expressions) is a compiler's job, which nft is; the
 * rules it is given are shown by --trace as they are.
 *
 * @module
 */

import { Links } from "./links.ts";
import { ERRNO } from "../ffi/constants.ts";
import { SyscallError } from "../ffi/errno.ts";
import type { BridgeAttachment, NatBackend } from "../steps/plan.ts";
import { BRIDGE, iptablesRemoval, iptablesRules, natRules, natTable } from "../steps/connect_bridge.ts";
import { acceptForward, removeForward } from "./forward.ts";
import { installed, loadRules, removeIptablesChains } from "./rules.ts";

/**
 * nftables when the host has `nft`, else iptables (`iptables-restore`):
 * whichever the host has. `$GCR_NAT` chooses between them where both are.
 */
export function natBackend(): NatBackend {
  const chosen = Deno.env.get("GCR_NAT");
  if (chosen === "nft" || chosen === "iptables") return chosen;
  if (chosen) throw new Error(`GCR_NAT must be nft or iptables (got ${JSON.stringify(chosen)})`);
  if (installed("nft")) return "nft";
  if (installed("iptables-restore")) return "iptables";
  throw new Error("--net bridge needs nftables (nft) or iptables for its NAT rules: neither is installed");
}

const ignoring = (errnos: number[], fn: () => void) => {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof SyscallError && errnos.includes(error.errno))) throw error;
  }
};

function writeSysctl(name: string, value: string): void {
  Deno.writeTextFileSync(`/proc/sys/${name.replaceAll(".", "/")}`, value);
}

/**
 * Connects the container whose first process is `pid` (gated, in its new
 * network namespace): bridge (made once), forwarding, veth pair, its
 * address and route, its NAT table, its forward accepts.
 */
export async function connect(attachment: BridgeAttachment, pid: number): Promise<void> {
  const { lease, hostVeth, prefixLength } = attachment;
  const { inNetns } = await import("./links.ts");
  const host = Links.open();
  try {
    ignoring([ERRNO.EEXIST], () => host.createBridge(BRIDGE));
    ignoring([ERRNO.EEXIST], () => host.addAddress(BRIDGE, `${lease.gateway}/${prefixLength}`));
    host.setUp(BRIDGE);
    writeSysctl("net.ipv4.ip_forward", "1");
    writeSysctl(`net.ipv4.conf.${BRIDGE}.route_localnet`, "1");
    host.createVethPair(hostVeth, "eth0", { peerNetnsPid: pid });
    host.setMaster(hostVeth, BRIDGE);
    host.setUp(hostVeth);
  } finally {
    host.close();
  }
  inNetns(pid, (container) => {
    container.addAddress("eth0", lease.cidr);
    container.setUp("eth0");
    container.addDefaultRoute(lease.gateway);
  });
  loadRules(attachment.nat, attachment.nat === "nft" ? natRules(attachment) : iptablesRules(attachment));
  acceptForward(attachment);
}

/**
 * Undoes connect, whatever part of it happened: the NAT table, the forward
 * chain, the host's
 * veth (gone already when the container's namespace went), the address;
 * and the bridge when no container holds an address any more.
 */
export function disconnect(attachment: BridgeAttachment, remaining: number): void {
  const problems: string[] = [];
  try {
    if (attachment.nat === "nft") {
      loadRules("nft", `delete table ip ${natTable(attachment.id)}\n`, /No such file or directory/);
    } else {
      removeIptablesChains("nat", (saved) => iptablesRemoval(attachment.id, saved));
    }
  } catch (error) {
    problems.push((error as Error).message);
  }
  try {
    removeForward(attachment);
  } catch (error) {
    problems.push((error as Error).message);
  }
  const host = Links.open();
  try {
    ignoring([ERRNO.ENODEV], () => host.deleteLink(attachment.hostVeth));
    if (remaining === 0) ignoring([ERRNO.ENODEV], () => host.deleteLink(BRIDGE));
  } catch (error) {
    problems.push((error as Error).message);
  } finally {
    host.close();
  }
  if (problems.length) throw new Error(`network of ${attachment.id}: ${problems.join("; ")}`);
}
