/**
 * The built-in `busybox` image: a root filesystem made in a second from the
 * host's static busybox (Debian/Ubuntu package busybox-static).
 *
 * @module
 */

const CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"];

/**
 * Whether an ELF file is statically linked: it has no PT_INTERP program
 * header. A dynamic busybox would need the host's libc inside the rootfs.
 */
export function isStaticElf(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || view.getUint32(0) !== 0x7f454c46 || bytes[4] !== 2) return false;
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const offset = phoff + i * phentsize;
    if (offset + 4 > bytes.length) return false;
    if (view.getUint32(offset, true) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

/** The host's static busybox, or undefined. */
export function findStaticBusybox(): string | undefined {
  for (const path of CANDIDATES) {
    try {
      const file = Deno.openSync(path);
      const head = new Uint8Array(4096);
      const n = file.readSync(head) ?? 0;
      file.close();
      if (isStaticElf(head.subarray(0, n))) return path;
    } catch { /* not there */ }
  }
  return undefined;
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
