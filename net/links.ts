/**
 * Links, addresses and routes in gcr's terms, over rtnetlink (netlink.ts):
 * what `ip link add … type bridge`, `ip link add … type veth peer …`,
 * `ip addr add` and `ip route add default via` do, without iproute2.
 *
 * ```ts
 * using host = Links.open();
 * host.createBridge("gcr0");
 * host.addAddress("gcr0", "10.88.0.1/16");
 * host.setUp("gcr0");
 * host.createVethPair("veth1a2b", "eth0", { peerNetnsPid: containerPid });
 * host.setMaster("veth1a2b", "gcr0");
 * host.setUp("veth1a2b");
 * inNetns(containerPid, (container) => {
 *   container.addAddress("eth0", "10.88.0.2/16");
 *   container.setUp("lo");
 *   container.setUp("eth0");
 *   container.addDefaultRoute("10.88.0.1");
 * });
 * ```
 *
 * @module
 */
import {
  AF_INET,
  AF_UNSPEC,
  AT_FDCWD,
  CLONE,
  IFA,
  IFF_UP,
  IFLA,
  IFLA_INFO,
  IFNAMSIZ,
  LAYOUT,
  NLM_F,
  O,
  O_CLOEXEC,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA,
  RTM,
  RTN_UNICAST,
  RTPROT_BOOT,
  VETH_INFO_PEER,
} from "../ffi/constants.ts";
import { check, lastErrno, SyscallError } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { attribute, concatAligned, nestedAttribute, NetlinkSocket, stringAttribute, u32Attribute } from "./netlink.ts";

/** A link by name (`"gcr0"`) or by interface index. */
export type Link = string | number;

export interface VethOptions {
  /** Create the peer directly in the network namespace of this process (IFLA_NET_NS_PID). */
  peerNetnsPid?: number;
}

/** An IPv4 address with its prefix length, parsed from `10.88.0.1/16`. */
export interface Ipv4Cidr {
  address: Uint8Array;
  prefixLength: number;
}

/** Parses `a.b.c.d` into 4 bytes; throws on anything else. */
export function parseIpv4(text: string): Uint8Array {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255)) {
    throw new Error(`Not an IPv4 address: ${JSON.stringify(text)}`);
  }
  return new Uint8Array(parts.map(Number));
}

/** Parses `a.b.c.d/n`; throws on anything else. */
export function parseIpv4Cidr(text: string): Ipv4Cidr {
  const [address, prefix, ...rest] = text.split("/");
  if (address === undefined || prefix === undefined || rest.length || !/^\d{1,2}$/.test(prefix) || +prefix > 32) {
    throw new Error(`Not an IPv4 address with a prefix length (a.b.c.d/n): ${JSON.stringify(text)}`);
  }
  return { address: parseIpv4(address), prefixLength: Number(prefix) };
}

function checkName(name: string): string {
  const length = new TextEncoder().encode(name).length;
  if (length === 0 || length >= IFNAMSIZ || /[\s/:]/.test(name)) {
    throw new Error(`Invalid interface name ${JSON.stringify(name)}: 1-${IFNAMSIZ - 1} bytes, no space, "/" or ":"`);
  }
  return name;
}

/** struct ifinfomsg: family, type, index, flags, change. */
function ifinfomsg(index = 0, flags = 0, change = 0): Uint8Array {
  const L = LAYOUT.ifinfomsg;
  const out = new Uint8Array(L.size);
  const view = new DataView(out.buffer);
  view.setUint8(L.ifi_family, AF_UNSPEC);
  view.setInt32(L.ifi_index, index, true);
  view.setUint32(L.ifi_flags, flags, true);
  view.setUint32(L.ifi_change, change, true);
  return out;
}

const CREATE = NLM_F.CREATE | NLM_F.EXCL;

/**
 * The rtnetlink operations gcr needs, on one socket: they act on the network
 * namespace the socket was created in (`Links.open()`: the caller's;
 * `inNetns(pid, …)`: that process's).
 */
export class Links {
  readonly socket: NetlinkSocket;

  constructor(socket: NetlinkSocket) {
    this.socket = socket;
  }

  /** Links in the calling thread's own network namespace. */
  static open(): Links {
    return new Links(NetlinkSocket.open());
  }

  /** The interface index of `name` (RTM_GETLINK by IFLA_IFNAME); ENODEV when there is none. */
  linkIndex(name: string): number {
    const [reply] = this.socket.request({
      type: RTM.GETLINK,
      body: [ifinfomsg(), stringAttribute(IFLA.IFNAME, checkName(name))],
      operation: `find link ${JSON.stringify(name)}`,
    });
    if (!reply) throw new Error(`rtnetlink RTM_GETLINK (find link ${JSON.stringify(name)}): no reply`);
    return new DataView(reply.payload.buffer, reply.payload.byteOffset).getInt32(LAYOUT.ifinfomsg.ifi_index, true);
  }

  #index(link: Link): number {
    return typeof link === "number" ? link : this.linkIndex(link);
  }

  /** Creates a bridge (`ip link add NAME type bridge`); EEXIST if the name is taken. */
  createBridge(name: string): void {
    this.socket.request({
      type: RTM.NEWLINK,
      flags: CREATE,
      body: [
        ifinfomsg(),
        stringAttribute(IFLA.IFNAME, checkName(name)),
        nestedAttribute(IFLA.LINKINFO, stringAttribute(IFLA_INFO.KIND, "bridge")),
      ],
      operation: `create bridge ${JSON.stringify(name)}`,
    });
  }

  /**
   * Creates a veth pair. The peer's description nests inside the link info
   * (IFLA_INFO_DATA → VETH_INFO_PEER: its own ifinfomsg and attributes), so
   * it can be born in another namespace: no window where the container's
   * end sits, named, in the host's namespace.
   */
  createVethPair(hostName: string, peerName: string, options: VethOptions = {}): void {
    const peer = [ifinfomsg(), stringAttribute(IFLA.IFNAME, checkName(peerName))];
    if (options.peerNetnsPid !== undefined) peer.push(u32Attribute(IFLA.NET_NS_PID, options.peerNetnsPid));
    const where = options.peerNetnsPid === undefined ? "" : ` in the netns of pid ${options.peerNetnsPid}`;
    this.socket.request({
      type: RTM.NEWLINK,
      flags: CREATE,
      body: [
        ifinfomsg(),
        stringAttribute(IFLA.IFNAME, checkName(hostName)),
        nestedAttribute(
          IFLA.LINKINFO,
          stringAttribute(IFLA_INFO.KIND, "veth"),
          nestedAttribute(IFLA_INFO.DATA, attribute(VETH_INFO_PEER, concatAligned(peer))),
        ),
      ],
      operation: `create veth pair ${JSON.stringify(hostName)} - ${JSON.stringify(peerName)}${where}`,
    });
  }

  #change(link: Link, what: string, attributes: Uint8Array[], flags = 0, change = 0): void {
    this.socket.request({
      type: RTM.NEWLINK,
      body: [ifinfomsg(this.#index(link), flags, change), ...attributes],
      operation: `${what} ${JSON.stringify(link)}`,
    });
  }

  /** Enslaves `link` to `bridge` (`ip link set LINK master BRIDGE`). */
  setMaster(link: Link, bridge: Link): void {
    this.#change(link, `set master ${JSON.stringify(bridge)} of`, [u32Attribute(IFLA.MASTER, this.#index(bridge))]);
  }

  /** Brings `link` up (`ip link set LINK up`): IFF_UP in both ifi_flags and ifi_change. */
  setUp(link: Link): void {
    this.#change(link, "set up", [], IFF_UP, IFF_UP);
  }

  /** Renames `link` (it must be down, as the kernel requires: EBUSY otherwise). */
  renameLink(link: Link, newName: string): void {
    this.#change(link, `rename to ${JSON.stringify(newName)}`, [stringAttribute(IFLA.IFNAME, checkName(newName))]);
  }

  /** Moves `link` into the network namespace of process `pid`. */
  moveToNetns(link: Link, pid: number): void {
    this.#change(link, `move to the netns of pid ${pid}`, [u32Attribute(IFLA.NET_NS_PID, pid)]);
  }

  /** Deletes `link`; for a veth, the kernel deletes its peer too. */
  deleteLink(link: Link): void {
    this.socket.request({
      type: RTM.DELLINK,
      body: [ifinfomsg(this.#index(link))],
      operation: `delete link ${JSON.stringify(link)}`,
    });
  }

  /** Adds an IPv4 address (`ip addr add 10.88.0.1/16 dev LINK`): IFA_LOCAL and IFA_ADDRESS both. */
  addAddress(link: Link, cidr: string): void {
    const { address, prefixLength } = parseIpv4Cidr(cidr);
    const L = LAYOUT.ifaddrmsg;
    const header = new Uint8Array(L.size);
    const view = new DataView(header.buffer);
    view.setUint8(L.ifa_family, AF_INET);
    view.setUint8(L.ifa_prefixlen, prefixLength);
    view.setUint8(L.ifa_scope, RT_SCOPE_UNIVERSE);
    view.setUint32(L.ifa_index, this.#index(link), true);
    this.socket.request({
      type: RTM.NEWADDR,
      flags: CREATE,
      body: [header, attribute(IFA.LOCAL, address), attribute(IFA.ADDRESS, address)],
      operation: `add address ${cidr} to ${JSON.stringify(link)}`,
    });
  }

  /**
   * Adds `default via GATEWAY` to the main table. The kernel picks the
   * outgoing link from the connected route covering the gateway, so an
   * address in its subnet must be on a link that is up.
   */
  addDefaultRoute(gateway: string): void {
    const L = LAYOUT.rtmsg;
    const header = new Uint8Array(L.size);
    const view = new DataView(header.buffer);
    view.setUint8(L.rtm_family, AF_INET);
    view.setUint8(L.rtm_dst_len, 0);
    view.setUint8(L.rtm_table, RT_TABLE_MAIN);
    view.setUint8(L.rtm_protocol, RTPROT_BOOT);
    view.setUint8(L.rtm_scope, RT_SCOPE_UNIVERSE);
    view.setUint8(L.rtm_type, RTN_UNICAST);
    this.socket.request({
      type: RTM.NEWROUTE,
      flags: CREATE,
      body: [header, attribute(RTA.GATEWAY, parseIpv4(gateway))],
      operation: `add default route via ${gateway}`,
    });
  }

  close(): void {
    this.socket.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function openPath(path: string): number {
  return check(
    libc().openat(AT_FDCWD, new TextEncoder().encode(path + "\0"), O.RDONLY | O_CLOEXEC, 0),
    `open(${JSON.stringify(path)})`,
  );
}

/**
 * Links of another network namespace, given by a path such as
 * `/proc/<pid>/ns/net` or `/run/netns/<name>`.
 *
 * A netlink socket stays bound to the namespace it was created in. So the
 * JS thread joins the target namespace only for the socket() call, then
 * returns to its own (kept open as /proc/thread-self/ns/net); requests on the
 * socket later configure the target's links from gcr's own namespace. setns
 * with CLONE_NEWNET moves only the calling thread (allowed in a threaded
 * process, unlike a user namespace), and the calls are synchronous, so no
 * other JS runs while the thread is away. Joining needs CAP_SYS_ADMIN over
 * the target namespace's owning user namespace and our own: root only.
 */
export function openLinksIn(nsPath: string): Links {
  const c = libc();
  const own = openPath("/proc/thread-self/ns/net");
  try {
    const target = openPath(nsPath);
    try {
      check(c.setns(target, CLONE.NEWNET), `setns(${JSON.stringify(nsPath)}, CLONE_NEWNET)`);
    } finally {
      c.close(target);
    }
    let socket: NetlinkSocket | undefined;
    let failure: unknown;
    try {
      socket = NetlinkSocket.open();
    } catch (error) {
      failure = error;
    }
    if (c.setns(own, CLONE.NEWNET) === -1) {
      const errno = lastErrno();
      socket?.close();
      // The JS thread is now in the wrong namespace: everything after this is suspect.
      throw new SyscallError(
        "setns(/proc/thread-self/ns/net, CLONE_NEWNET)",
        errno,
        `cannot return from ${nsPath}; this process's main thread stays in that network namespace`,
      );
    }
    if (!socket) throw failure;
    return new Links(socket);
  } finally {
    c.close(own);
  }
}

/**
 * Runs `fn` with the links of process `pid`'s network namespace (see
 * `openLinksIn`), and closes the socket when `fn` returns or its promise
 * settles.
 */
export function inNetns<T>(pid: number, fn: (links: Links) => T): T {
  const links = openLinksIn(`/proc/${pid}/ns/net`);
  let result: T;
  try {
    result = fn(links);
  } catch (error) {
    links.close();
    throw error;
  }
  if (result instanceof Promise) return result.finally(() => links.close()) as T;
  links.close();
  return result;
}
