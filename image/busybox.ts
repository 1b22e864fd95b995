/**
 * The built-in `busybox` image: a root filesystem made in a second from the
 * host's static busybox (Debian/Ubuntu package busybox-static).
 *
 * @module
 */

import { firstStaticBinary } from "../host/static_binary.ts";

const CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"];

/** The host's static busybox, or undefined. */
export function findStaticBusybox(): string | undefined {
  return firstStaticBinary(CANDIDATES);
}

/**
 * Builds a busybox rootfs at `target`: busybox, a symlink per applet, the
 * mount points, and minimal /etc files. Built in a temporary folder beside
 * `target` and renamed into place, so an interrupted build leaves nothing.
 */
export function buildBusyboxRootfs(target: string): void {
  const parent = target.slice(0, target.lastIndexOf("/")) || "/";
  const busybox = findStaticBusybox();
  if (!busybox) {
    throw new Error(
      "no static busybox on this host to build rootfs/busybox from: install it with `apt-get install busybox-static`",
    );
  }
  Deno.mkdirSync(parent, { recursive: true });
  const temporary = Deno.makeTempDirSync({ dir: parent, prefix: ".busybox-" });
  try {
    Deno.chmodSync(temporary, 0o755);
    for (const dir of ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "root", "var/log"]) {
      Deno.mkdirSync(`${temporary}/${dir}`, { recursive: true, mode: 0o755 });
    }
    Deno.chmodSync(`${temporary}/tmp`, 0o1777);
    Deno.chmodSync(`${temporary}/root`, 0o700);
    Deno.copyFileSync(busybox, `${temporary}/bin/busybox`);
    Deno.chmodSync(`${temporary}/bin/busybox`, 0o755);
    const list = new Deno.Command(busybox, { args: ["--list-full"], stdout: "piped", stderr: "null" }).outputSync();
    for (const applet of new TextDecoder().decode(list.stdout).split("\n").filter(Boolean)) {
      if (applet === "bin/busybox" || applet.includes("..")) continue;
      try {
        Deno.symlinkSync("/bin/busybox", `${temporary}/${applet}`);
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
    }
    Deno.writeTextFileSync(
      `${temporary}/etc/passwd`,
      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    Deno.writeTextFileSync(`${temporary}/etc/group`, "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n");
    Deno.renameSync(temporary, target);
  } catch (error) {
    Deno.removeSync(temporary, { recursive: true });
    throw error;
  }
}
