/**
 * Fixtures for the layer applier tests: archives built by independent tools
 * (GNU tar from real trees, python3's tarfile for exotic and hostile ones),
 * and tree snapshots to prove nothing outside the root changed. The
 * assertions are tests/helpers.ts's.
 *
 * @module
 */
import { applyLayer } from "../../image/apply_layer.ts";

/** The system python (a pyenv shim under /root is not reachable for the rootless run). */
export const PYTHON = "/usr/bin/python3";

/** Runs a command and returns its stdout; throws with stderr when it fails. */
export async function sh(command: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  if (!out.success) {
    throw new Error(`${command} ${args.join(" ")} failed (${out.code}): ${decoder.decode(out.stderr)}`);
  }
  return decoder.decode(out.stdout);
}

/** One member for python's tarfile. Binary values are hex. */
export interface PyEntry {
  name: string;
  /** Name as hex bytes instead of `name` (for non-UTF-8 names). */
  nameHex?: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "fifo" | "char" | "block";
  data?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: number;
  link?: string;
  devmajor?: number;
  devminor?: number;
  /** xattr name → value as hex. */
  xattrs?: Record<string, string>;
  /** Extra PAX records (text). */
  pax?: Record<string, string>;
}

const PY_BUILDER = `
import io, json, sys, tarfile
spec = json.load(sys.stdin)
fmt = {"pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT}[spec["format"]]
types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
         "fifo": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE}
with tarfile.open(spec["path"], "w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
    for e in spec["entries"]:
        name = bytes.fromhex(e["nameHex"]).decode("utf-8", "surrogateescape") if "nameHex" in e else e["name"]
        ti = tarfile.TarInfo(name)
        ti.type = types[e.get("type", "file")]
        ti.mode = e.get("mode", 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
        ti.uid = e.get("uid", 0)
        ti.gid = e.get("gid", 0)
        ti.uname = e.get("uname", "")
        ti.gname = e.get("gname", "")
        ti.mtime = e.get("mtime", 1700000000)
        ti.linkname = e.get("link", "")
        ti.devmajor = e.get("devmajor", 0)
        ti.devminor = e.get("devminor", 0)
        pax = {}
        for k, v in e.get("xattrs", {}).items():
            pax["SCHILY.xattr." + k] = bytes.fromhex(v).decode("utf-8", "surrogateescape")
        pax.update(e.get("pax", {}))
        ti.pax_headers = pax
        data = e.get("data", "").encode()
        if ti.type == tarfile.REGTYPE:
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        else:
            tar.addfile(ti)
`;

/** Writes a tar with python's tarfile: names, link names and headers exactly as given. */
export async function pyTar(
  path: string,
  entries: PyEntry[],
  format: "pax" | "gnu" | "ustar" = "pax",
): Promise<string> {
  await sh(PYTHON, ["-c", PY_BUILDER], JSON.stringify({ path, format, entries }));
  return path;
}

/** `tar -cf` of a directory's content with GNU tar (xattrs, numeric owners). */
export async function gnuTar(dir: string, path: string, format = "posix"): Promise<string> {
  await sh("tar", [
    `--format=${format}`,
    "--xattrs",
    "--xattrs-include=*",
    "--numeric-owner",
    "-C",
    dir,
    "-cf",
    path,
    ".",
  ]);
  return path;
}

/** Compresses `path` with gzip or zstd beside it; returns the new path. */
export async function compress(path: string, kind: "gzip" | "zstd"): Promise<string> {
  if (kind === "gzip") await sh("gzip", ["-k", "-f", path]);
  else await sh("zstd", ["-q", "-f", path, "-o", `${path}.zst`]);
  return kind === "gzip" ? `${path}.gz` : `${path}.zst`;
}

/** Applies the layer in file `path`; returns the notices. */
export async function applyFile(
  root: string,
  path: string,
  mediaType = "tar",
  rootless = Deno.uid() !== 0,
  inflateInWorker = false,
): Promise<string[]> {
  const notices: string[] = [];
  const file = await Deno.open(path);
  await applyLayer(root, file.readable, { mediaType, rootless, inflateInWorker, onNotice: (m) => notices.push(m) });
  return notices;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Everything observable about a tree: each path's type, mode, owner, link
 * count, size, mtime, content digest and link target. Two equal snapshots
 * mean nothing in the tree was created, changed, linked to or removed.
 */
export async function snapshot(dir: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (path: string, rel: string) => {
    const st = await Deno.lstat(path);
    const kind = st.isSymlink ? "l" : st.isDirectory ? "d" : st.isFile ? "f" : "o";
    let extra = "";
    if (st.isSymlink) extra = await Deno.readLink(path);
    if (st.isFile) extra = await sha256(await Deno.readFile(path));
    lines.push(
      [rel, kind, st.mode?.toString(8), st.uid, st.gid, st.nlink, st.size, st.mtime?.getTime(), st.ino, extra].join(
        " ",
      ),
    );
    if (st.isDirectory) {
      const names = [];
      for await (const entry of Deno.readDir(path)) names.push(entry.name);
      for (const name of names.sort()) await walk(`${path}/${name}`, `${rel}/${name}`);
    }
  };
  await walk(dir, ".");
  return lines.join("\n");
}

/** A directory with known content, to be left alone by everything. */
export async function makeSentinel(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/sub`, { recursive: true });
  await Deno.writeTextFile(`${dir}/secret`, "do not touch\n");
  await Deno.writeTextFile(`${dir}/sub/deep`, "deep\n");
  await Deno.chmod(`${dir}/secret`, 0o640);
  await Deno.symlink("secret", `${dir}/link`);
}

/** lstat as plain numbers. */
export function stat(
  path: string,
): { mode: number; uid: number; gid: number; ino: number; nlink: number; mtime: number } {
  const st = Deno.lstatSync(path);
  return {
    mode: st.mode ?? 0,
    uid: st.uid ?? -1,
    gid: st.gid ?? -1,
    ino: st.ino ?? -1,
    nlink: st.nlink ?? -1,
    mtime: st.mtime?.getTime() ?? 0,
  };
}

/** Every path under `dir` (relative), for "no .wh. file was written" checks. */
export function allPaths(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    out.push(rel);
    if (entry.isDirectory && !entry.isSymlink) out.push(...allPaths(`${dir}/${entry.name}`, rel));
  }
  return out.sort();
}

/** An xattr's value as hex (python's os.getxattr, never following a symlink); "" if absent. */
export async function xattrHex(path: string, name: string): Promise<string> {
  return (await sh(PYTHON, [
    "-c",
    "import os,sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).hex())\nexcept OSError: print('')",
    path,
    name,
  ])).trim();
}
