import { MS } from "../ffi/constants.ts";
import { mkdirInRoot, mountInRoot, type RootFd } from "./in_root.ts";
import { type Step } from "./step.ts";

/** POSIX shared memory (shm_open) lives in /dev/shm: a tmpfs of the container's own. */
export function mountShm(fd: RootFd): Step {
  return {
    name: "mount-shm",
    why: "shm_open and semaphores need /dev/shm; the container gets its own 64 MiB tmpfs",
    parent: [],
    child: [
      ...mkdirInRoot(fd, "/dev/shm", 0o1777),
      ...mountInRoot(fd, "/dev/shm", {
        source: "shm",
        type: "tmpfs",
        flags: MS.NOSUID | MS.NODEV | MS.NOEXEC,
        data: "mode=1777,size=65536k",
      }),
    ],
  };
}
