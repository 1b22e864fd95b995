/**
 * A small rtnetlink client: an AF_NETLINK/NETLINK_ROUTE socket driven through
 * libc (socket, bind, sendto, recvfrom), with messages encoded by hand.
 *
 * Why by hand: npm has no maintained pure-JS rtnetlink encoder. `netlink`
 * (0.3.0) is a native node-gyp addon and `node-netlink` (0.0.4) sits on a
 * native socket addon too; neither loads in Deno without a compiler, and both
 * would duplicate the socket that FFI already gives us. The wire format is
 * small and stable (a 16-byte header, a fixed family header, 4-byte aligned
 * TLVs), and every struct offset used here is checked against the C headers
 * by tests/ffi/constants_test.ts (LAYOUT.nlmsghdr, …).
 *
 * Every request carries NLM_F_REQUEST|NLM_F_ACK and its own sequence number;
 * the kernel answers with replies (for a get) and then an NLMSG_ERROR whose
 * error is 0 (the ack) or -errno, which becomes a SyscallError naming the
 * operation: `rtnetlink RTM_NEWLINK (create bridge "gcr0"): EEXIST (File
 * exists)`, followed by the kernel's own text when it gives one (extended ack).
 *
 * @module
 */
import {
  AF_NETLINK,
  LAYOUT,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_ROUTE,
  NLM_F,
  NLMSG,
  NLMSGERR_ATTR_MSG,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOL_NETLINK,
} from "../ffi/constants.ts";
import { check, SyscallError } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const NLMSGHDR = LAYOUT.nlmsghdr;
const RTATTR = LAYOUT.rtattr;

/** Netlink pads every header and attribute to 4 bytes (NLMSG_ALIGN, RTA_ALIGN). */
function align(length: number): number {
  return (length + 3) & ~3;
}

/** Parts laid end to end, each padded to 4 bytes (headers and attributes of one message). */
export function concatAligned(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + align(part.length), 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += align(part.length);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Attributes (struct rtattr: u16 length including the header, u16 type, payload)

/** One attribute with a raw payload. */
export function attribute(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(RTATTR.size + payload.length);
  const view = new DataView(out.buffer);
  view.setUint16(RTATTR.rta_len, out.length, true);
  view.setUint16(RTATTR.rta_type, type, true);
  out.set(payload, RTATTR.size);
  return out;
}

/** An attribute holding a host-order u32 (IFLA_MASTER, IFLA_NET_NS_PID, …). */
export function u32Attribute(type: number, value: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, value, true);
  return attribute(type, payload);
}

/** An attribute holding a NUL-terminated string (IFLA_IFNAME, IFLA_INFO_KIND). */
export function stringAttribute(type: number, value: string): Uint8Array {
  return attribute(type, encoder.encode(value + "\0"));
}

/** An attribute whose payload is other attributes (IFLA_LINKINFO, IFLA_INFO_DATA). */
export function nestedAttribute(type: number, ...children: Uint8Array[]): Uint8Array {
  return attribute(type, concatAligned(children));
}

/** Attributes of a payload, by type (the last one wins, as in the kernel's nla_parse). */
export function parseAttributes(bytes: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + RTATTR.size <= bytes.length) {
    const length = view.getUint16(offset + RTATTR.rta_len, true);
    if (length < RTATTR.size || offset + length > bytes.length) break;
    // The top bits are NLA_F_NESTED and NLA_F_NET_BYTEORDER, not the type.
    const type = view.getUint16(offset + RTATTR.rta_type, true) & 0x3fff;
    out.set(type, bytes.subarray(offset + RTATTR.size, offset + length));
    offset += align(length);
  }
  return out;
}

/** A NUL-terminated string attribute's text. */
export function attributeString(payload: Uint8Array | undefined): string | undefined {
  if (!payload) return undefined;
  const end = payload.indexOf(0);
  return decoder.decode(end === -1 ? payload : payload.subarray(0, end));
}

// ---------------------------------------------------------------------------
// Messages

/** One message the kernel sent back: its type and everything after the nlmsghdr. */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  payload: Uint8Array;
}

/** Splits a datagram into its messages. */
export function parseMessages(bytes: Uint8Array): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + NLMSGHDR.size <= bytes.length) {
    const length = view.getUint32(offset + NLMSGHDR.nlmsg_len, true);
    if (length < NLMSGHDR.size || offset + length > bytes.length) {
      throw new Error(`rtnetlink: truncated message (${length} bytes at offset ${offset} of ${bytes.length})`);
    }
    out.push({
      type: view.getUint16(offset + NLMSGHDR.nlmsg_type, true),
      flags: view.getUint16(offset + NLMSGHDR.nlmsg_flags, true),
      seq: view.getUint32(offset + NLMSGHDR.nlmsg_seq, true),
      payload: bytes.subarray(offset + NLMSGHDR.size, offset + length),
    });
    offset += align(length);
  }
  return out;
}

/** The names of the message types gcr sends, for error messages. */
const TYPE_NAMES: Record<number, string> = {
  16: "RTM_NEWLINK",
  17: "RTM_DELLINK",
  18: "RTM_GETLINK",
  20: "RTM_NEWADDR",
  24: "RTM_NEWROUTE",
};

/** What one request is: its message type, extra flags, body parts, and what to call it in errors. */
export interface Request {
  /** RTM_* message type. */
  type: number;
  /** Flags beyond NLM_F_REQUEST|NLM_F_ACK, e.g. NLM_F_CREATE|NLM_F_EXCL. */
  flags?: number;
  /** The family header (ifinfomsg, …) followed by attributes; each part is padded to 4 bytes. */
  body: readonly Uint8Array[];
  /** What the request does, in gcr's terms: `create bridge "gcr0"`. */
  operation: string;
}

/** Encodes a request: nlmsghdr (length, type, flags, seq, pid 0 = the kernel) + body. */
export function encodeRequest(request: Request, seq: number): Uint8Array {
  const body = concatAligned(request.body);
  const out = new Uint8Array(NLMSGHDR.size + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(NLMSGHDR.nlmsg_len, out.length, true);
  view.setUint16(NLMSGHDR.nlmsg_type, request.type, true);
  view.setUint16(NLMSGHDR.nlmsg_flags, NLM_F.REQUEST | NLM_F.ACK | (request.flags ?? 0), true);
  view.setUint32(NLMSGHDR.nlmsg_seq, seq, true);
  view.setUint32(NLMSGHDR.nlmsg_pid, 0, true);
  out.set(body, NLMSGHDR.size);
  return out;
}

/**
 * The errno of an NLMSG_ERROR (0 for an ack) and the kernel's extended-ack
 * text. With NETLINK_CAP_ACK the echoed request is only its 16-byte header,
 * so the TLVs start right after `struct nlmsgerr`.
 */
export function parseError(message: NetlinkMessage): { errno: number; text: string | undefined } {
  const view = new DataView(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
  const errno = -view.getInt32(LAYOUT.nlmsgerr.error, true);
  let text: string | undefined;
  if (message.flags & NLM_F.ACK_TLVS) {
    const echoed = message.flags & NLM_F.CAPPED
      ? NLMSGHDR.size
      : align(view.getUint32(LAYOUT.nlmsgerr.msg + NLMSGHDR.nlmsg_len, true));
    const tlvs = message.payload.subarray(LAYOUT.nlmsgerr.msg + echoed);
    text = attributeString(parseAttributes(tlvs).get(NLMSGERR_ATTR_MSG));
  }
  return { errno, text };
}

// ---------------------------------------------------------------------------
// The socket

/** Large enough for any reply gcr asks for (one link's attributes are about 1.5 KiB). */
const RECEIVE_SIZE = 64 * 1024;

/**
 * An rtnetlink socket. It configures the network namespace it was created
 * in, whichever namespace the calling thread is in later (see links.ts
 * `inNetns`). All calls are synchronous FFI calls on the JS thread: rtnetlink
 * handles a request inside sendto(), so the replies and the ack are already
 * queued when recvfrom() is called, and errno is read in the same turn.
 */
export class NetlinkSocket {
  readonly fd: number;
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #buffer = new Uint8Array(RECEIVE_SIZE);
  #closed = false;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens and binds a NETLINK_ROUTE socket in the calling thread's network namespace. */
  static open(): NetlinkSocket {
    const c = libc();
    const fd = check(c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), "socket(AF_NETLINK, NETLINK_ROUTE)");
    try {
      const one = new Uint8Array(4);
      new DataView(one.buffer).setInt32(0, 1, true);
      // Both options are best effort: without them errors still carry errno.
      c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
      c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
      // nl_pid 0: the kernel picks the port id; no multicast groups.
      const address = new Uint8Array(LAYOUT.sockaddr_nl.size);
      new DataView(address.buffer).setUint16(LAYOUT.sockaddr_nl.nl_family, AF_NETLINK, true);
      check(c.bind(fd, address, address.length), "bind(AF_NETLINK)");
    } catch (error) {
      c.close(fd);
      throw error;
    }
    return new NetlinkSocket(fd);
  }

  /**
   * Sends one request and returns the replies that came before its ack
   * (empty for a plain change). A negative ack throws a SyscallError.
   */
  request(request: Request): NetlinkMessage[] {
    if (this.#closed) throw new Error(`rtnetlink socket is closed: ${request.operation}`);
    const c = libc();
    const seq = this.#seq = (this.#seq + 1) >>> 0;
    const call = `rtnetlink ${TYPE_NAMES[request.type] ?? `type ${request.type}`} (${request.operation})`;
    const bytes = encodeRequest(request, seq);
    const kernel = new Uint8Array(LAYOUT.sockaddr_nl.size);
    new DataView(kernel.buffer).setUint16(LAYOUT.sockaddr_nl.nl_family, AF_NETLINK, true);
    const sent = check(c.sendto(this.fd, bytes, BigInt(bytes.length), 0, kernel, kernel.length), `sendto: ${call}`);
    if (Number(sent) !== bytes.length) throw new Error(`${call}: sent ${sent} of ${bytes.length} bytes`);

    const replies: NetlinkMessage[] = [];
    for (;;) {
      const received = Number(
        check(c.recvfrom(this.fd, this.#buffer, BigInt(this.#buffer.length), 0, null, null), `recvfrom: ${call}`),
      );
      for (const message of parseMessages(this.#buffer.subarray(0, received))) {
        // Left-overs of an earlier request (none are expected: each waits for its ack).
        if (message.seq !== seq) continue;
        if (message.type === NLMSG.ERROR) {
          const { errno, text } = parseError(message);
          if (errno !== 0) throw new SyscallError(call, errno, text);
          return replies;
        }
        if (message.type === NLMSG.DONE) return replies;
        replies.push({ ...message, payload: message.payload.slice() });
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().close(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
