/**
 * `--net bridge`: the container's network namespace joined to a `gcr0`
 * bridge by a veth pair, an address from the allocator (ipam.ts), a default
 * route through the bridge, outbound NAT and `-p` published ports. Links go
 * through rtnetlink (links.ts); NAT through nftables, one table per
 * container, so that its rules go with one `nft delete table`.
 *
 * nftables is driven through the `nft` program: its netlink protocol
 * (nf_tables batches of expressions) is a compiler's job, which nft is; the
 * rules it is given are shown by --trace as they are.
 *
 * @module
 */
import { type Lease } from "./ipam.ts";
import type { PortMapping } from "./publish.ts";
import { Links } from "./links.ts";
import { ERRNO } from "../ffi/constants.ts";
import { SyscallError } from "../ffi/errno.ts";

/** The bridge every bridged container is attached to, as docker0 is Docker's. */
export const BRIDGE = "gcr0";

/** What connecting one container needs, decided before the clone. */
export interface BridgeAttachment {
  readonly id: string;
  /** How NAT is done: nftables, or iptables where the host has no nft. */
  readonly nat: NatBackend;
  readonly lease: Lease;
  readonly prefixLength: number;
  /** The host end of the veth pair (the container's end is `eth0`). */
  readonly hostVeth: string;
  readonly ports: readonly PortMapping[];
}

export type NatBackend = "nft" | "iptables";

/**
 * nftables when the host has `nft`, else iptables (`iptables-restore`):
 * whichever the host has. `$GCR_NAT` chooses between them where both are.
 */
export function natBackend(): NatBackend {
  const chosen = Deno.env.get("GCR_NAT");
  if (chosen === "nft" || chosen === "iptables") return chosen;
  if (chosen) throw new Error(`GCR_NAT must be nft or iptables (got ${JSON.stringify(chosen)})`);
  const onPath = (program: string) =>
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"].some((dir) => {
      try {
        return Deno.statSync(`${dir}/${program}`).isFile;
      } catch {
        return false;
      }
    });
  if (onPath("nft")) return "nft";
  if (onPath("iptables-restore")) return "iptables";
  throw new Error("--net bridge needs nftables (nft) or iptables for its NAT rules: neither is installed");
}

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

const ignoring = (errnos: number[], fn: () => void) => {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof SyscallError && errnos.includes(error.errno))) throw error;
  }
};

/**
 * Runs nft (`-f FILE`) or iptables-restore (`--noflush FILE`) on `script`;
 * throws with the program's message.
 */
function runNat(backend: NatBackend, script: string, absentIs?: RegExp): void {
  const file = Deno.makeTempFileSync({ prefix: `gcr-${backend}-` });
  try {
    Deno.writeTextFileSync(file, script);
    const [program, args] = backend === "nft" ? ["nft", ["-f", file]] : ["iptables-restore", ["--noflush", file]];
    const result = new Deno.Command(program, { args, stdout: "null", stderr: "piped" }).outputSync();
    const message = new TextDecoder().decode(result.stderr).trim();
    // A table that is not there (connect failed before nft) is already undone.
    if (!result.success && !(absentIs && absentIs.test(message))) {
      throw new Error(`${program} ${args[0]}: ${message.split("\n")[0]}`);
    }
  } finally {
    Deno.removeSync(file);
  }
}

function writeSysctl(name: string, value: string): void {
  Deno.writeTextFileSync(`/proc/sys/${name.replaceAll(".", "/")}`, value);
}

/**
 * Connects the container whose first process is `pid` (gated, in its new
 * network namespace): bridge (made once), forwarding, veth pair, its
 * address and route, its NAT table.
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
  runNat(attachment.nat, attachment.nat === "nft" ? natRules(attachment) : iptablesRules(attachment));
}

/**
 * Undoes connect, whatever part of it happened: the NAT table, the host's
 * veth (gone already when the container's namespace went), the address;
 * and the bridge when no container holds an address any more.
 */
export function disconnect(attachment: BridgeAttachment, remaining: number): void {
  const problems: string[] = [];
  try {
    if (attachment.nat === "nft") {
      runNat("nft", `delete table ip ${natTable(attachment.id)}\n`, /No such file or directory/);
    } else {
      // Chains that are not there (connect failed before iptables) are already undone.
      runNat("iptables", iptablesRemoval(attachment.id), /[Bb]ad rule|No chain|does not exist/);
    }
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
