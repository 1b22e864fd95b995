import type { BridgeAttachment } from "./plan.ts";
import type { Step } from "./step.ts";

/**
 * `--net bridge`, as data: what gcr does to join a container to the gcr0
 * bridge (links and addresses through rtnetlink, NAT rules through nftables
 * or iptables), which net/bridge.ts carries out and --trace and explain
 * show as written here.
 *
 * @module
 */
/** The bridge every bridged container is attached to, as docker0 is Docker's. */
export const BRIDGE = "gcr0";

/**
 * How iptables rules are loaded: added to what is there, not replacing it;
 * waiting for legacy iptables' xtables lock, which gcrs starting side by
 * side would otherwise fail each other on.
 */
export const IPTABLES_RESTORE_ARGS = ["--noflush", "--wait=10"] as const;
const IPTABLES_RESTORE = `iptables-restore ${IPTABLES_RESTORE_ARGS.join(" ")}`;

/** The container's own iptables chains (in the nat table): what it sends out, and its published ports. */
export function iptablesChains(id: string): { post: string; dnat: string } {
  const short = id.slice(0, 12);
  return { post: `GCR-${short}-POST`, dnat: `GCR-${short}-DNAT` };
}

/** The same rules as natRules, for iptables-restore --noflush: the container's chains, and jumps to them. */
export function iptablesRules(attachment: BridgeAttachment): string {
  const { lease, ports } = attachment;
  const { post, dnat } = iptablesChains(attachment.id);
  return [
    "*nat",
    `:${post} - [0:0]`,
    `:${dnat} - [0:0]`,
    `-A ${post} -s ${lease.address}/32 ! -o ${BRIDGE} -j MASQUERADE`,
    `-A ${post} -s 127.0.0.0/8 -d ${lease.address}/32 -o ${BRIDGE} -j MASQUERADE`,
    ...ports.map((p) =>
      `-A ${dnat} -p ${p.protocol} ${
        p.hostIp ? `-d ${p.hostIp}/32` : "-m addrtype --dst-type LOCAL"
      } -m ${p.protocol} --dport ${p.hostPort} -j DNAT --to-destination ${lease.address}:${p.containerPort}`
    ),
    `-I POSTROUTING -j ${post}`,
    `-I PREROUTING -j ${dnat}`,
    `-I OUTPUT -j ${dnat}`,
    "COMMIT",
  ].join("\n") + "\n";
}

/**
 * What removes iptablesRules' chains and their jumps, given the nat table as
 * `iptables-save -t nat` prints it (see chainsRemoval).
 */
export function iptablesRemoval(id: string, savedNat: string): string | undefined {
  const { post, dnat } = iptablesChains(id);
  return chainsRemoval("nat", [post, dnat], savedNat);
}

/** The container's own iptables chain in the filter table: the forwarded traffic it lets through. */
export function forwardChain(id: string): string {
  return `GCR-${id.slice(0, 12)}-FWD`;
}

/**
 * The container's forwarded traffic let through FORWARD when its policy is
 * DROP (dockerd sets it): what it sends, the replies to what it sent, and
 * connections to its published ports. These are Docker's and podman's rules
 * (`-i docker0 -j ACCEPT`, `-o docker0 --ctstate RELATED,ESTABLISHED`;
 * netavark's `-s <subnet>`, `-d <subnet> --ctstate RELATED,ESTABLISHED`)
 * for one container instead of a network: gcr has no daemon that knows when
 * the last container on gcr0 goes, so each container's rules come and go
 * with it, as its NAT does, and a forward that is no container's is still
 * dropped.
 *
 * Its address together with `-i gcr0`: a routed packet comes in on the
 * bridge, not on the veth (a bridge port, seen only under br_netfilter),
 * and no packet from outside may claim the address. A published port is
 * matched by its DNAT (`--ctstate DNAT` from that host port), so a
 * connection sent straight to the container's address from outside is
 * still dropped. The jump goes ahead of a DROP or REJECT rule at FORWARD's
 * end, but after dockerd's jump to DOCKER-USER: that chain is where Docker
 * tells admins to put their own forwarding rules, "evaluated before any
 * rules Docker creates", and a container of gcr's on the same host must
 * not pass them by (forwardPosition). `position` is left out by explain,
 * which reads no firewall.
 */
export function forwardRules(attachment: BridgeAttachment, position?: number): string {
  const { lease, ports } = attachment;
  const chain = forwardChain(attachment.id);
  const to = `-d ${lease.address}/32 -o ${BRIDGE}`;
  return [
    "*filter",
    `:${chain} - [0:0]`,
    `-A ${chain} -s ${lease.address}/32 -i ${BRIDGE} -j ACCEPT`,
    `-A ${chain} ${to} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ...ports.map((p) =>
      `-A ${chain} ${to} -p ${p.protocol} -m conntrack --ctstate DNAT --ctorigdstport ${p.hostPort} ` +
      `-m ${p.protocol} --dport ${p.containerPort} -j ACCEPT`
    ),
    `-I FORWARD ${position ?? "<after DOCKER-USER, else 1>"} -j ${chain}`,
    "COMMIT",
  ].join("\n") + "\n";
}

/** Where forwardRules' jump goes in FORWARD, given the filter table as `iptables-save -t filter` prints it. */
export function forwardPosition(savedFilter: string): number {
  const forward = savedFilter.split("\n").filter((line) => line.startsWith("-A FORWARD "));
  return forward.findLastIndex((line) => line === "-A FORWARD -j DOCKER-USER") + 2;
}

/** What removes forwardRules' chain and its jump, given the filter table as `iptables-save -t filter` prints it. */
export function forwardRemoval(id: string, savedFilter: string): string | undefined {
  return chainsRemoval("filter", [forwardChain(id)], savedFilter);
}

/**
 * What removes a container's own `chains` from `table`, given the table as
 * iptables-save prints it: every rule that jumps to one of them, then the
 * chains; undefined when none of it is there. Read back rather than
 * written blind: one `-D` of a rule that is gone (a firewall reload, a
 * second undo after the container's gcr did it) fails the whole
 * iptables-restore, leaving the rest, and its message differs between
 * iptables-nft and legacy, so it cannot be told apart from a real failure.
 */
export function chainsRemoval(table: string, chains: readonly string[], saved: string): string | undefined {
  const lines = saved.split("\n");
  const jumps = lines.filter((line) => line.startsWith("-A ") && chains.some((chain) => line.endsWith(` -j ${chain}`)));
  const declared = chains.filter((chain) => lines.some((line) => line.startsWith(`:${chain} `)));
  if (!jumps.length && !declared.length) return undefined;
  return [
    `*${table}`,
    ...jumps.map((line) => `-D ${line.slice("-A ".length)}`),
    ...declared.flatMap((chain) => [`-F ${chain}`, `-X ${chain}`]),
    "COMMIT",
  ].join("\n") + "\n";
}

/** The container's own nftables table. */
export function natTable(id: string): string {
  return `gcr-${id.slice(0, 12)}`;
}

/**
 * The container's nftables table: masquerade for what it sends out (and for
 * what reaches it from the host's loopback through a published port), and
 * for each `-p`, DNAT from the host's addresses (prerouting: from outside;
 * output: from the host itself) to the container.
 */
export function natRules(attachment: BridgeAttachment): string {
  const { lease, ports } = attachment;
  const dnat = ports.map((p) => {
    const to = p.hostIp ? `ip daddr ${p.hostIp}` : "fib daddr type local";
    return `${to} ${p.protocol} dport ${p.hostPort} dnat to ${lease.address}:${p.containerPort}`;
  });
  return [
    `table ip ${natTable(attachment.id)} {`,
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ip saddr ${lease.address} oifname != "${BRIDGE}" masquerade`,
    // A connection to 127.0.0.1:PORT leaves with a loopback source, which
    // the container could not answer: it gets the bridge's address.
    `    ip saddr 127.0.0.0/8 ip daddr ${lease.address} oifname "${BRIDGE}" masquerade`,
    "  }",
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    ...dnat.map((rule) => `    ${rule}`),
    "  }",
    "  chain output {",
    // -100, dstnat's value: nft 1.0 accepts the name only for prerouting.
    "    type nat hook output priority -100; policy accept;",
    ...dnat.map((rule) => `    ${rule}`),
    "  }",
    "}",
  ].join("\n") + "\n";
}

/** What connect does, as --trace and explain show it (`<pid>`: the container's first process). */
export function showConnect(attachment: BridgeAttachment): string[] {
  const { lease, hostVeth, prefixLength } = attachment;
  return [
    `ip link add ${BRIDGE} type bridge; ip addr add ${lease.gateway}/${prefixLength} dev ${BRIDGE}; ip link set ${BRIDGE} up  (once; rtnetlink)`,
    `sysctl net.ipv4.ip_forward=1 net.ipv4.conf.${BRIDGE}.route_localnet=1`,
    `ip link add ${hostVeth} type veth peer name eth0 netns <pid>; ip link set ${hostVeth} master ${BRIDGE} up  (rtnetlink)`,
    `in <pid>'s netns: ip addr add ${lease.cidr} dev eth0; ip link set eth0 up; ip route add default via ${lease.gateway}`,
    ...(attachment.nat === "nft"
      ? natRules(attachment).trimEnd().split("\n").map((line, i) => (i === 0 ? `nft -f - <<< ${line}` : `    ${line}`))
      : iptablesRules(attachment).trimEnd().split("\n").map((line, i) =>
        i === 0 ? `${IPTABLES_RESTORE} <<< ${line}` : `    ${line}`
      )),
    ...forwardRules(attachment).trimEnd().split("\n").map((line, i) =>
      i === 0 ? `${IPTABLES_RESTORE} <<< ${line}  ${FORWARD_NOTE[attachment.nat]}` : `    ${line}`
    ),
  ];
}

/** Why the forward rules are iptables' with either NAT backend (net/forward.ts says more). */
const FORWARD_NOTE: Record<BridgeAttachment["nat"], string> = {
  nft:
    "(where iptables is installed: a FORWARD DROP policy is iptables', and only a rule in its chain passes a packet)",
  iptables: "(lets the container's traffic through a FORWARD DROP policy)",
};

/**
 * `--net bridge`: gcr joins the child's new network namespace to the gcr0
 * bridge while the child waits at its gate (the veth's far end is created
 * straight in the child's namespace, by its pid); the child's next call
 * waits for it, so the command starts with its address and route in place.
 */
export function connectBridge(attachment: BridgeAttachment): Step {
  return {
    name: "connect-bridge",
    why: `eth0 with ${attachment.lease.cidr} on the ${"gcr0"} bridge, a default route through it, NAT` +
      (attachment.ports.length ? " and published ports" : "") + ", its forwarded traffic let through a FORWARD DROP",
    parent: [{ op: "connect-bridge", attachment, show: showConnect(attachment) }],
    child: [],
  };
}
