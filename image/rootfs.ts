/**
 * Finding a container's root filesystem and checking it is safe to mount
 * into.
 *
 * @module
 */
import { buildBusyboxRootfs } from "./busybox.ts";
import { say } from "../output/log.ts";
import { exists, resolvePath } from "../host/files.ts";

/** The folder that holds images: --rootfs-dir, else $GCR_ROOT, else ./rootfs as in the Go original. */
export function rootfsDir(flag?: string): string {
  const dir = (flag ?? Deno.env.get("GCR_ROOT") ?? "rootfs").replace(/\/+$/, "") || "/";
  return resolvePath(dir);
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
