/**
 * A unix stream socket connected by path: an engine's console socket, which
 * receives the master of a container's pty (SCM_RIGHTS).
 *
 * @module
 */

import { AF_UNIX, LAYOUT, O_CLOEXEC, SOCK_STREAM } from "./constants.ts";
import { check, lastErrno, SyscallError } from "./errno.ts";
import { libc } from "./libc.ts";

/** A connected unix stream socket to `path` (the engine's console socket). */
export function connectUnix(path: string): number {
  const { sockaddr_un } = LAYOUT;
  const name = new TextEncoder().encode(path);
  if (name.length >= sockaddr_un.size - sockaddr_un.sun_path) throw new Error(`console socket path too long: ${path}`);
  const address = new Uint8Array(sockaddr_un.size);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(name, sockaddr_un.sun_path);
  const fd = check(libc().socket(AF_UNIX, SOCK_STREAM | O_CLOEXEC, 0), "socket(AF_UNIX)");
  if (libc().connect(fd, address, sockaddr_un.size) === -1) {
    const errno = lastErrno();
    libc().close(fd);
    throw new SyscallError(`connect(${path})`, errno);
  }
  return fd;
}
