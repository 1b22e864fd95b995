/**
 * `-v host:container[:ro]` volumes: parsed and checked by gcr before the
 * clone. The host path is made absolute and symlink-free; the container
 * path is resolved inside the image, component by component, with the
 * semantics of openat2's RESOLVE_IN_ROOT (absolute symlinks start at the
 * image's root), except that a symlink that would lead out of the image is
 * refused rather than clamped. What is missing is made in the container's
 * `upper` folder, never in the image.
 *
 * @module
 */
import { lstatIfPresent } from "../ffi/present.ts";
import type { Volume } from "../steps/plan.ts";

/** Parses `-v host:container[:ro|rw]`. */
export function parseVolume(spec: string): { host: string; target: string; readOnly: boolean } {
  const parts = spec.split(":");
  const mode = parts.length === 3 ? parts[2] : undefined;
  if (parts.length < 2 || parts.length > 3 || (mode !== undefined && mode !== "ro" && mode !== "rw")) {
    throw new Error(`invalid volume ${JSON.stringify(spec)} (expected HOST:CONTAINER or HOST:CONTAINER:ro)`);
  }
  const [host, target] = parts as [string, string];
  if (!host) throw new Error(`invalid volume ${JSON.stringify(spec)}: the host path is empty`);
  if (!target.startsWith("/")) {
    throw new Error(`invalid volume ${JSON.stringify(spec)}: the container path must be absolute`);
  }
  return { host, target, readOnly: mode === "ro" };
}

/** Where the container's own mounts are: a volume inside them would be hidden or meaningless. */
const KERNEL_TREES = ["proc", "dev", "sys", "tmp"];

/**
 * Resolves `target` inside `image` without ever leaving it. Returns the
 * symlink-free components and how many of them exist in the image: one
 * lstat per component until the first that is missing (what follows it
 * cannot exist), and again from wherever `..` climbs back above it.
 */
export function resolveInImage(image: string, target: string, spec: string): { parts: string[]; existing: number } {
  const pending = target.split("/").filter((p) => p !== "" && p !== ".");
  const done: string[] = [];
  let links = 0;
  // How many leading components of `done` exist; all of them while none is missing.
  let missingAt: number | undefined;
  while (pending.length) {
    const name = pending.shift()!;
    if (name === "..") {
      if (done.length === 0) throw new Error(`volume ${JSON.stringify(spec)}: the container path leaves the rootfs`);
      done.pop();
      if (missingAt !== undefined && done.length <= missingAt) missingAt = undefined;
      continue;
    }
    const info = missingAt !== undefined ? undefined : lstatIfPresent(`${image}/${[...done, name].join("/")}`);
    if (info?.isSymlink) {
      if (++links > 40) {
        throw new Error(`volume ${JSON.stringify(spec)}: too many symbolic links in the container path`);
      }
      const link = Deno.readLinkSync(`${image}/${[...done, name].join("/")}`);
      // Resolved as the container would see it: absolute links from its root.
      const base = link.startsWith("/") ? [] : [...done];
      let depth = base.length;
      for (const part of link.split("/")) {
        if (part === "..") depth--;
        else if (part !== "" && part !== ".") depth++;
        if (depth < 0) {
          throw new Error(
            `volume ${JSON.stringify(spec)}: /${[...done, name].join("/")} is a symbolic link to ${link}, ` +
              "which leads out of the rootfs: refused",
          );
        }
      }
      done.length = 0;
      done.push(...base);
      pending.unshift(...link.split("/").filter((p) => p !== "" && p !== "."));
      continue;
    }
    if (!info) missingAt ??= done.length;
    else if (!info.isDirectory && pending.length) {
      throw new Error(`volume ${JSON.stringify(spec)}: /${[...done, name].join("/")} is not a directory`);
    }
    done.push(name);
  }
  return { parts: done, existing: missingAt ?? done.length };
}

/**
 * Checks a volume and makes its mount point: the host path must exist (it
 * is made absolute against the cwd and symlink-free); the container path is
 * then prepared as `prepareMountPoint` says.
 */
export function prepareVolume(spec: string, image: string, upper: string | undefined): Volume {
  const { host, target, readOnly } = parseVolume(spec);
  let real: string;
  try {
    real = Deno.realPathSync(host);
  } catch {
    throw new Error(`volume ${JSON.stringify(spec)}: host path ${host} does not exist`);
  }
  const isDir = Deno.statSync(real).isDirectory;
  return {
    host: real,
    target,
    resolved: prepareMountPoint(spec, target, { path: real, isDir }, image, upper),
    readOnly,
  };
}

/**
 * The mount point for `target`, a directory or a file as `host` is: the
 * path resolves inside the image; what is missing of it is made in `upper`,
 * with each existing ancestor's mode (and owner, as root) copied from the
 * image so the merged view keeps them. Returns the resolved path. For a file
 * gcr itself wrote (the generated /etc files) no host check is needed.
 */
export function prepareMountPoint(
  spec: string,
  target: string,
  host: { readonly path: string; readonly isDir: boolean },
  image: string,
  upper: string | undefined,
): string {
  const { parts, existing } = resolveInImage(image, target, spec);
  if (parts.length === 0) throw new Error(`volume ${JSON.stringify(spec)}: cannot mount over the container's /`);
  if (KERNEL_TREES.includes(parts[0]!) && parts.length > 1 || ["proc", "dev", "sys"].includes(parts[0]!)) {
    throw new Error(
      `volume ${JSON.stringify(spec)}: /${parts.join("/")} is inside a mount gcr makes (/proc, /dev, /sys, /tmp)`,
    );
  }
  const resolved = `/${parts.join("/")}`;
  if (existing === parts.length) {
    const inImage = Deno.statSync(`${image}${resolved}`);
    if (inImage.isDirectory !== host.isDir) {
      throw new Error(
        `volume ${JSON.stringify(spec)}: ${host.path} is a ${host.isDir ? "directory" : "file"} but ${resolved} ` +
          `in the image is ${inImage.isDirectory ? "a directory" : "not a directory"}`,
      );
    }
  } else if (upper !== undefined) {
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join("/");
      const last = i === parts.length;
      if (lstatIfPresent(`${upper}/${rel}`)) continue;
      if (last && !host.isDir) Deno.writeFileSync(`${upper}/${rel}`, new Uint8Array(), { mode: 0o644 });
      else Deno.mkdirSync(`${upper}/${rel}`, { mode: 0o755 });
      const original = i <= existing ? Deno.statSync(`${image}/${rel}`) : undefined;
      if (original) {
        Deno.chmodSync(`${upper}/${rel}`, (original.mode ?? 0o755) & 0o7777);
        if (Deno.uid() === 0) Deno.chownSync(`${upper}/${rel}`, original.uid, original.gid);
      }
    }
  }
  return resolved;
}
