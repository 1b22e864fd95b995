/**
 * The device nodes config.json lists (linux.devices), made with mknod.
 *
 * @module
 */
import { S_IFBLK, S_IFCHR, S_IFIFO } from "../ffi/constants.ts";
import { mkdirInRoot, mknodInRoot, type RootFd } from "./in_root.ts";
import { call, num, type Step } from "./step.ts";

/** Device nodes config.json lists (linux.devices), made with mknod (needs CAP_MKNOD: not in a user namespace). */
export function makeDevices(
  devices: readonly {
    path: string;
    type: string;
    major: number;
    minor: number;
    fileMode?: number;
    uid?: number;
    gid?: number;
  }[],
  fd: RootFd,
  folders: readonly string[] = [],
): Step {
  const kind = { c: S_IFCHR, u: S_IFCHR, b: S_IFBLK, p: S_IFIFO } as Record<string, number>;
  return {
    name: "make-devices",
    why: "the device nodes config.json asks for in the container's /dev, with exactly its modes",
    parent: [],
    child: [
      // mknod applies the umask to the mode (gcr's own, 022, would turn 0666
      // into 0644); set-umask gives the command its umask later.
      call("umask", num(0, "0")),
      ...folders.flatMap((dir) => mkdirInRoot(fd, dir, 0o755)),
      ...devices.flatMap((device) => {
        // makedev: glibc's encoding of major and minor into dev_t.
        const dev = (BigInt(device.major & 0xfff) << 8n) | BigInt(device.minor & 0xff) |
          (BigInt(device.minor & ~0xff) << 12n) | (BigInt(device.major & ~0xfff) << 32n);
        const mode = kind[device.type]! | (device.fileMode ?? 0o666);
        const owned = (device.uid ?? 0) !== 0 || (device.gid ?? 0) !== 0;
        const owner = owned ? { uid: device.uid ?? 0, gid: device.gid ?? 0 } : undefined;
        return mknodInRoot(fd, device.path, { value: mode, show: `0${mode.toString(8)}` }, dev, owner);
      }),
    ],
  };
}
