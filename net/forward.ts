/**
 * A bridged container's forwarded traffic let through a FORWARD chain whose
 * policy is DROP, as dockerd leaves it: without this, a `--net bridge`
 * container on a host with Docker reaches nothing beyond the host. The
 * rules (steps/connect_bridge.ts, forwardRules) are the container's own
 * chain in iptables' filter table, with either NAT backend.
 *
 * Why iptables' table even when NAT is nftables: in nftables an accept ends
 * only the base chain it is in; the packet still meets every other base
 * chain on the forward hook, and a drop in any of them is final. Checked on
 * the test machine (iptables 1.8.9 nf_tables, nft 1.0.6): after `iptables
 * -P FORWARD DROP`, a table of gcr's own whose forward chain accepts
 * everything (at priority filter, or -300) leaves the container's packets
 * dropped; the same accept in iptables' FORWARD lets them through. So the
 * accept has to be in the chain that holds the policy. That chain is
 * changed through iptables, not nft: it may be iptables-nft's (`nft list`
 * itself says "managed by iptables-nft, do not touch", and dockerd keeps
 * reading and rewriting it with iptables, which must still understand every
 * rule in it) or legacy x_tables, which nft cannot reach at all.
 *
 * Where no iptables is installed, nothing is added: no iptables policy can
 * be in the way. A drop policy in a native nftables chain of the admin's
 * own firewall is the admin's decision, as it is for podman's nft driver.
 *
 * @module
 */
import { forwardPosition, forwardRemoval, forwardRules } from "../steps/connect_bridge.ts";
import type { BridgeAttachment, NatBackend } from "../steps/plan.ts";
import { installed, loadRules, removeIptablesChains, savedIptables } from "./rules.ts";

/**
 * Whether the container's forward rules go into iptables: always with
 * iptables NAT; with nftables NAT where iptables is installed. Added even
 * while FORWARD's policy is ACCEPT, because dockerd may start later and set
 * it to DROP under a running container.
 */
export function forwardsThroughIptables(nat: NatBackend): boolean {
  return nat === "iptables" || (installed("iptables-restore") && installed("iptables-save"));
}

/**
 * Adds the container's forward chain and the jump to it: first in FORWARD,
 * or right after dockerd's jump to DOCKER-USER (forwardRules says why).
 */
export function acceptForward(attachment: BridgeAttachment): void {
  if (!forwardsThroughIptables(attachment.nat)) return;
  loadRules("iptables", forwardRules(attachment, forwardPosition(savedIptables("filter"))));
}

/**
 * Removes what acceptForward added, whatever of it is still there (read
 * back from iptables-save: chainsRemoval says why).
 */
export function removeForward(attachment: BridgeAttachment): void {
  if (forwardsThroughIptables(attachment.nat)) {
    removeIptablesChains("filter", (saved) => forwardRemoval(attachment.id, saved));
  }
}
