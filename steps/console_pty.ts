/**
 * A pty from the container's own devpts, its master sent to an engine's
 * console socket.
 *
 * @module
 */
import { LAYOUT, O, O_CLOEXEC, SCM_RIGHTS, SOL_SOCKET, TIOCGPTPEER, TIOCSCTTY, TIOCSPTLCK } from "../ffi/constants.ts";
import { call, flags, num, shown, type Step } from "./step.ts";

/**
 * process.terminal with --console-socket: a pty from the container's own
 * devpts, its master sent over the socket (SCM_RIGHTS, as runc does) to the
 * engine, its peer the container's stdio and controlling terminal. The fd
 * numbers are known in advance: the child opens the lowest free ones.
 */
export function consolePty(socketFd: number, firstFree: number): Step {
  const master = firstFree, peer = firstFree + 1;
  const { msghdr, iovec, cmsghdr } = LAYOUT;
  const name = new TextEncoder().encode("/dev/ptmx");
  const iov = new Uint8Array(iovec.size);
  new DataView(iov.buffer).setBigUint64(iovec.iov_len, BigInt(name.length), true);
  // CMSG_SPACE(sizeof(int)): the header, the fd, padded to 8 bytes.
  const control = new Uint8Array(cmsghdr.size + 8);
  const c = new DataView(control.buffer);
  c.setBigUint64(cmsghdr.cmsg_len, BigInt(cmsghdr.size + 4), true);
  c.setInt32(cmsghdr.cmsg_level, SOL_SOCKET, true);
  c.setInt32(cmsghdr.cmsg_type, SCM_RIGHTS, true);
  c.setInt32(cmsghdr.size, master, true);
  const header = new Uint8Array(msghdr.size);
  const h = new DataView(header.buffer);
  h.setBigUint64(msghdr.msg_iovlen, 1n, true);
  h.setBigUint64(msghdr.msg_controllen, BigInt(control.length), true);
  const message = {
    struct: header,
    pointers: [
      { offset: msghdr.msg_iov, to: { struct: iov, pointers: [{ offset: iovec.iov_base, to: { bytes: name } }] } },
      { offset: msghdr.msg_control, to: { bytes: control } },
    ],
  };
  const zero = new Uint8Array(4);
  return {
    name: "console-pty",
    why: "a pty from the container's devpts: the master goes to the engine's console socket, the peer becomes stdio",
    parent: [],
    child: [
      call("open", "/dev/ptmx", flags({ ...O, CLOEXEC: O_CLOEXEC }, "O_", ["RDWR", "NOCTTY", "CLOEXEC"])),
      call("ioctl", num(master, `${master} /* master */`), num(TIOCSPTLCK, "TIOCSPTLCK"), shown({ bytes: zero }, "&0")),
      call("ioctl", master, num(TIOCGPTPEER, "TIOCGPTPEER"), flags(O, "O_", ["RDWR", "NOCTTY"])),
      call(
        "sendmsg",
        num(socketFd, `${socketFd} /* console socket */`),
        shown(message, `{"/dev/ptmx", SCM_RIGHTS {${master}}}`),
        0,
      ),
      call("close", master),
      call("close", socketFd),
      call("setsid"),
      call("ioctl", num(peer, `${peer} /* peer */`), num(TIOCSCTTY, "TIOCSCTTY"), 0),
      ...[0, 1, 2].map((fd) => call("dup3", peer, fd, 0)),
      call("close", peer),
    ],
  };
}
