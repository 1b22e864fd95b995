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

/** What removes iptablesRules' chains and jumps. */
export function iptablesRemoval(id: string): string {
  const { post, dnat } = iptablesChains(id);
  return [
    "*nat",
    `-D POSTROUTING -j ${post}`,
    `-D PREROUTING -j ${dnat}`,
    `-D OUTPUT -j ${dnat}`,
    `-F ${post}`,
    `-X ${post}`,
    `-F ${dnat}`,
    `-X ${dnat}`,
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
        i === 0 ? `iptables-restore --noflush <<< ${line}` : `    ${line}`
      )),
  ];
}

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
      (attachment.ports.length ? " and published ports" : ""),
    parent: [{ op: "connect-bridge", attachment, show: showConnect(attachment) }],
    child: [],
  };
}
