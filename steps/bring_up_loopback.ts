import { CHAIN_FDS } from "../ffi/chain.ts";
import { AF_INET, IFF_UP, LAYOUT, SIOCSIFFLAGS, SOCK_DGRAM } from "../ffi/constants.ts";
import { call, num, shown, type Step } from "./step.ts";

/**
 * A new network namespace has only `lo`, and it is down: bring it up with
 * SIOCSIFFLAGS on a throwaway socket. The chain cannot pass a return value
 * on, but close-fds left 0-4 open, so the socket is descriptor 5.
 */
export function bringUpLoopback(): Step {
  const ifreq = new Uint8Array(LAYOUT.ifreq.size);
  ifreq.set(new TextEncoder().encode("lo"), LAYOUT.ifreq.ifr_name);
  new DataView(ifreq.buffer).setInt16(LAYOUT.ifreq.ifr_flags, IFF_UP, true);
  const fd = CHAIN_FDS.firstFree;
  return {
    name: "bring-up-loopback",
    why: "the new network namespace's lo starts down; programs expect 127.0.0.1 to work",
    parent: [],
    child: [
      call("socket", num(AF_INET, "AF_INET"), num(SOCK_DGRAM, "SOCK_DGRAM"), 0),
      call(
        "ioctl",
        fd,
        num(SIOCSIFFLAGS, "SIOCSIFFLAGS"),
        shown({ bytes: ifreq }, '{ifr_name="lo", ifr_flags=IFF_UP}'),
      ),
      call("close", fd),
    ],
  };
}
