/**
 * Finding a container's root filesystem and checking it is safe to mount
 * into.
 *
 * @module
 */
import { buildBusyboxRootfs } from "./busybox.ts";
import { say } from "../output/log.ts";
import { exists } from "../host/files.ts";

/** Mount points gcr mounts over; each must be a real directory in the rootfs. */
export const MOUNT_POINTS = ["proc", "dev", "sys", "tmp"] as const;

/** The folder that holds images: --rootfs-dir, else $GCR_ROOT, else ./rootfs as in the Go original. */
export function rootfsDir(flag?: string): string {
  const dir = (flag ?? Deno.env.get("GCR_ROOT") ?? "rootfs").replace(/\/+$/, "") || "/";
  return dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir.replace(/^\.\//, "")}`;
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

/**
 * Refuses an image whose mount points are symlinks: mount(2) follows them,
 * so an image with `/proc -> /etc` would have proc mounted over /etc (and,
 * with a symlink pointing out, over a host path). Missing mount points are
 * fine: gcr makes them in the container's upper folder, never in the image.
 */
export function checkMountPoints(rootfs: string): void {
  for (const name of MOUNT_POINTS) {
    const path = `${rootfs}/${name}`;
    let info: Deno.FileInfo | undefined;
    try {
      info = Deno.lstatSync(path);
    } catch { /* missing */ }
    if (info?.isSymlink) {
      throw new Error(`rootfs ${path} is a symlink (to ${Deno.readLinkSync(path)}): refusing to mount over it`);
    }
  }
}
