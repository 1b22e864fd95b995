/**
 * Finding a container's root filesystem and checking it is safe to mount
 * into.
 *
 * @module
 */
import { buildBusyboxRootfs } from "./busybox.ts";
import { AT_FDCWD, LOCK_EX, LOCK_NB, LOCK_SH, O, O_CLOEXEC } from "./ffi/constants.ts";
import { check } from "./ffi/errno.ts";
import { libc } from "./ffi/libc.ts";
import { say } from "./log.ts";

/** Mount points gcr mounts over; each must be a real directory in the rootfs. */
export const MOUNT_POINTS = ["proc", "dev", "sys", "tmp"] as const;

/** The folder that holds images: --rootfs-dir, else $GCR_ROOT, else ./rootfs as in the Go original. */
export function rootfsDir(flag?: string): string {
  const dir = (flag ?? Deno.env.get("GCR_ROOT") ?? "rootfs").replace(/\/+$/, "") || "/";
  return dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir.replace(/^\.\//, "")}`;
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `image` is a path to a root filesystem rather than a name under the rootfs folder. */
export function isPath(image: string): boolean {
  return image.includes("/") || image === "." || image === "..";
}

/**
 * The absolute, symlink-free path of `image`'s root filesystem. A missing
 * `busybox` is built from the host's static busybox.
 */
export function findRootfs(image: string, dir: string): string {
  if (isPath(image)) {
    if (!exists(image)) throw new Error(`no rootfs at ${image}`);
    return Deno.realPathSync(image);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(image)) throw new Error(`invalid image name ${JSON.stringify(image)}`);
  const path = `${dir}/${image}`;
  if (!exists(path) && image === "busybox") {
    say(`gcr: building ${path} from the host's static busybox`);
    buildBusyboxRootfs(path);
  }
  if (!exists(path)) {
    let found: string[] = [];
    try {
      found = [...Deno.readDirSync(dir)].filter((e) => e.isDirectory && !e.name.startsWith(".")).map((e) => e.name)
        .sort();
    } catch { /* no folder */ }
    throw new Error(`no rootfs ${JSON.stringify(image)} in ${dir}/ (found: ${found.join(", ") || "none"})`);
  }
  const real = Deno.realPathSync(path);
  if (!Deno.statSync(real).isDirectory) throw new Error(`rootfs ${path} is not a directory`);
  return real;
}

/** Marks a mount point gcr made, so whichever gcr leaves last can remove it. */
const MADE_BY_GCR = "user.gcr.mountpoint";

const cString = (text: string) => new TextEncoder().encode(text + "\0");

function madeByGcr(path: string): boolean {
  return Number(libc().lgetxattr(cString(path), cString(MADE_BY_GCR), null, 0n)) >= 0;
}

/** A running container's hold on its rootfs folder; `release` when it has exited. */
export interface RootfsHold {
  release(): void;
}

/**
 * Refuses a rootfs whose mount points are symlinks: mount(2) follows them,
 * so a rootfs with `/proc -> /etc` would have proc mounted over the host's
 * /etc. Creates missing mount points, marked with an xattr, so the folder
 * can be left as it was found.
 *
 * Several containers may share a rootfs, and rmdir succeeds on a directory
 * that another mount namespace still mounts on (the kernel then detaches
 * that mount). So each gcr holds a shared flock on the rootfs folder while
 * it runs, and only one that can then take it exclusively, the last to
 * leave, removes the marked mount points.
 */
export function holdRootfs(rootfs: string): RootfsHold {
  const fd = check(
    libc().openat(AT_FDCWD, cString(rootfs), O.RDONLY | O.DIRECTORY | O_CLOEXEC, 0),
    `open(${JSON.stringify(rootfs)})`,
  );
  try {
    check(libc().flock(fd, LOCK_SH), `flock(${JSON.stringify(rootfs)}, LOCK_SH)`);
    const created: string[] = [];
    for (const name of MOUNT_POINTS) {
      const path = `${rootfs}/${name}`;
      let info: Deno.FileInfo | undefined;
      try {
        info = Deno.lstatSync(path);
      } catch { /* missing */ }
      if (info?.isSymlink) {
        throw new Error(`rootfs ${path} is a symlink (to ${Deno.readLinkSync(path)}): refusing to mount over it`);
      }
      if (!info) {
        Deno.mkdirSync(path, { mode: 0o755 });
        const one = new Uint8Array([0x31]);
        libc().lsetxattr(cString(path), cString(MADE_BY_GCR), one, 1n, 0);
        created.push(path);
      }
    }
    return {
      release() {
        if (libc().flock(fd, LOCK_EX | LOCK_NB) === 0) {
          for (const name of MOUNT_POINTS) {
            const path = `${rootfs}/${name}`;
            // Ours, or marked by an earlier gcr that could not remove it then.
            if (created.includes(path) || madeByGcr(path)) {
              try {
                Deno.removeSync(path);
              } catch { /* not empty: something was put there; leave it */ }
            }
          }
        }
        libc().close(fd);
      },
    };
  } catch (error) {
    libc().close(fd);
    throw error;
  }
}
