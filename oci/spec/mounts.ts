/**
 * Reads config.json's `mounts` ({@link OciMount}), splitting each one's
 * options as runc's specconv does ({@link parseMountOptions}): mount(2)
 * flags, a propagation for a second call, and the file system's own data.
 *
 * Its own module because most of it is tables about mount(2) rather than
 * about config.json: runc's option names, the propagation names (which
 * `linux.rootfsPropagation` takes too, through {@link asPropagation}) and the
 * options gcr refuses.
 *
 * @module
 */
import { resolvePath } from "../../host/files.ts";
import { MS } from "../../ffi/constants.ts";
import { asAbsolutePath, asCString, asString, fail, Fields, item, list, oneOf, type Read } from "./fields.ts";

/** One `mounts` entry, its options parsed as runc's specconv parses them. */
export interface OciMount {
  /** Absolute, inside the container. */
  readonly destination: string;
  /** The file system type; "bind" for every bind mount, whatever config.json said. */
  readonly type: string;
  /** For a bind mount, an absolute host path (a relative one is relative to the bundle); otherwise the device or label, maybe "". */
  readonly source: string;
  /** MS_* flags for the mount call (MS_BIND, MS_REC with rbind, MS_RDONLY, …); no propagation flags. */
  readonly flags: number;
  /** MS_PRIVATE, MS_SHARED, MS_SLAVE or MS_UNBINDABLE, maybe with MS_REC, for a second mount call; 0: none asked. */
  readonly propagation: number;
  /** The options that are not flags, joined with "," for mount(2)'s data argument. */
  readonly data: string;
  readonly bind: boolean;
  /** rbind: the mounts under the source come too. */
  readonly recursive: boolean;
  readonly readOnly: boolean;
  /** `tmpcopyup`: a tmpfs that starts with the image's files at its mount point (see oci/mount_plan.ts). */
  readonly copyUp?: boolean;
}

type FlagChange = { readonly set: number } | { readonly clear: number };

/** Options that are mount(2) flags: runc's table (libcontainer/specconv). A Map, so "constructor" is not one. */
const MOUNT_FLAG_OPTIONS = new Map<string, FlagChange>([
  ["defaults", { set: 0 }],
  ["ro", { set: MS.RDONLY }],
  ["rw", { clear: MS.RDONLY }],
  ["nosuid", { set: MS.NOSUID }],
  ["suid", { clear: MS.NOSUID }],
  ["nodev", { set: MS.NODEV }],
  ["dev", { clear: MS.NODEV }],
  ["noexec", { set: MS.NOEXEC }],
  ["exec", { clear: MS.NOEXEC }],
  ["sync", { set: MS.SYNCHRONOUS }],
  ["async", { clear: MS.SYNCHRONOUS }],
  ["dirsync", { set: MS.DIRSYNC }],
  ["remount", { set: MS.REMOUNT }],
  ["mand", { set: MS.MANDLOCK }],
  ["nomand", { clear: MS.MANDLOCK }],
  ["noatime", { set: MS.NOATIME }],
  ["atime", { clear: MS.NOATIME }],
  ["nodiratime", { set: MS.NODIRATIME }],
  ["diratime", { clear: MS.NODIRATIME }],
  ["relatime", { set: MS.RELATIME }],
  ["norelatime", { clear: MS.RELATIME }],
  ["strictatime", { set: MS.STRICTATIME }],
  ["nostrictatime", { clear: MS.STRICTATIME }],
  ["bind", { set: MS.BIND }],
  ["rbind", { set: MS.BIND | MS.REC }],
  ["acl", { set: MS.POSIXACL }],
  ["noacl", { clear: MS.POSIXACL }],
  ["silent", { set: MS.SILENT }],
  ["loud", { clear: MS.SILENT }],
  ["iversion", { set: MS.I_VERSION }],
  ["noiversion", { clear: MS.I_VERSION }],
  ["lazytime", { set: MS.LAZYTIME }],
  ["nolazytime", { clear: MS.LAZYTIME }],
]);

const PROPAGATION = new Map<string, number>([
  ["private", MS.PRIVATE],
  ["rprivate", MS.PRIVATE | MS.REC],
  ["shared", MS.SHARED],
  ["rshared", MS.SHARED | MS.REC],
  ["slave", MS.SLAVE],
  ["rslave", MS.SLAVE | MS.REC],
  ["unbindable", MS.UNBINDABLE],
  ["runbindable", MS.UNBINDABLE | MS.REC],
]);

/**
 * Options runc understands that gcr does not: recursive mount attributes
 * (mount_setattr with AT_RECURSIVE), symlink following, runc's tmpfs copy-up
 * and id-mapped mounts. Passed on as data they would reach the file system,
 * which would refuse them or, worse, take them as its own.
 */
const UNSUPPORTED_MOUNT_OPTIONS = new Set([
  ..."ro rw nosuid suid nodev dev noexec exec atime noatime diratime nodiratime relatime norelatime strictatime"
    .split(" ")
    .map((option) => `r${option}`),
  "rnostrictatime",
  "rnosymfollow",
  "rsymfollow",
  "nosymfollow",
  "symfollow",
  "idmap",
  "ridmap",
]);

export interface ParsedMountOptions {
  readonly flags: number;
  readonly propagation: number;
  readonly data: string;
  /** `tmpcopyup` (runc's, crun's): the tmpfs starts with what the image has at its mount point. */
  readonly copyUp: boolean;
}

/**
 * Splits mount options the way runc's specconv does: later flags win over
 * earlier ones (`ro,rw` is read-write), propagation goes to its own call, and
 * anything else is the file system's (`mode=755,size=65536k`).
 * `path` names the options in errors.
 */
export function parseMountOptions(options: readonly string[], path = "options"): ParsedMountOptions {
  let flags = 0;
  let propagation = 0;
  let propagationOption = "";
  let copyUp = false;
  const data: string[] = [];
  options.forEach((option, index) => {
    const at = item(path, index);
    const change = MOUNT_FLAG_OPTIONS.get(option);
    const propagate = PROPAGATION.get(option);
    if (change) {
      flags = "set" in change ? flags | change.set : flags & ~change.clear;
    } else if (propagate !== undefined) {
      // runc makes one mount call per propagation option; gcr keeps one, so two would lose one.
      if (propagationOption) fail(at, `is a second propagation option (after ${propagationOption}); gcr takes one`);
      propagation = propagate;
      propagationOption = option;
    } else if (option === "tmpcopyup") {
      copyUp = true;
    } else if (UNSUPPORTED_MOUNT_OPTIONS.has(option)) {
      fail(at, `(${option}) is not supported by gcr`);
    } else {
      data.push(option);
    }
  });
  return { flags, propagation, data: data.join(","), copyUp };
}

export function asMount(bundle: string): Read<OciMount> {
  return (value, path) => {
    // uidMappings/gidMappings make an id-mapped mount (runtime-spec 1.2), which gcr cannot make.
    const mount = new Fields(value, path, {
      destination: "read",
      type: "read",
      source: "read",
      options: "read",
      uidMappings: "refuse-unless-empty",
      gidMappings: "refuse-unless-empty",
    });
    const destination = mount.required("destination", asAbsolutePath);
    const declaredType = mount.or("type", asCString, "");
    const { flags: optionFlags, propagation, data, copyUp } = parseMountOptions(
      mount.or("options", list(asString), []),
      mount.at("options"),
    );
    // The spec makes type a no-op for bind mounts; runc and crun also take type "bind" alone as one.
    const bind = (optionFlags & MS.BIND) !== 0 || declaredType === "bind";
    const flags = bind ? optionFlags | MS.BIND : optionFlags;
    let source = mount.or("source", asCString, "");
    if (bind) {
      if (!source) fail(mount.at("source"), "is required for a bind mount");
      source = resolvePath(bundle, source);
    } else if (!declaredType) {
      fail(mount.at("type"), "is required unless the mount is a bind mount");
    }
    return {
      destination,
      type: bind ? "bind" : declaredType,
      source,
      flags,
      propagation,
      data,
      bind,
      recursive: bind && (flags & MS.REC) !== 0,
      readOnly: (flags & MS.RDONLY) !== 0,
      ...(copyUp ? { copyUp } : {}),
    };
  };
}

/** `linux.rootfsPropagation` names a propagation as a mount option does, so it is read from the same table. */
export const asPropagation: Read<number> = (value, path) => {
  const name = oneOf([...PROPAGATION.keys()])(value, path);
  return PROPAGATION.get(name) ?? 0;
};
