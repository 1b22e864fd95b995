/**
 * Reads config.json's `linux`: namespaces, uid and gid mappings, sysctls,
 * masked and read-only paths, device nodes and the propagation of the
 * container's / ({@link OciLinux}).
 *
 * Its own module because these are the Linux-only parts of the container's
 * isolation; `resources` and `seccomp`, each a long list of fields with
 * refusals of its own, are read by the modules beside it and only placed
 * here.
 *
 * @module
 */
import { CLONE } from "../../ffi/constants.ts";
import type { IdMapping } from "../../steps/step.ts";
import {
  asAbsolutePath,
  asCString,
  asString,
  asStringMap,
  asUint32,
  fail,
  Fields,
  integer,
  list,
  oneOf,
  optionalEntry,
  type Read,
  type Shape,
} from "./fields.ts";
import { asPropagation } from "./mounts.ts";
import type { ResourceLimits } from "../../cgroup/limits.ts";
import type { SeccompProfile } from "../../security/seccomp/profile.ts";
import { asResources } from "./resources.ts";
import { asSeccomp } from "./seccomp.ts";

export type NamespaceType = "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup";

/** The clone(2)/unshare(2) flag of each namespace type gcr can make. */
export const NAMESPACE_FLAGS: Readonly<Record<NamespaceType, number>> = {
  pid: CLONE.NEWPID,
  network: CLONE.NEWNET,
  mount: CLONE.NEWNS,
  ipc: CLONE.NEWIPC,
  uts: CLONE.NEWUTS,
  user: CLONE.NEWUSER,
  cgroup: CLONE.NEWCGROUP,
};

export interface OciNamespace {
  readonly type: NamespaceType;
  readonly flag: number;
  /** Join this namespace (a /proc/<pid>/ns/<type> or bind-mounted file) instead of making a new one. */
  readonly path?: string;
}

export interface OciLinux {
  /** Each type at most once. No entry for a type: the container shares the host's. */
  readonly namespaces: readonly OciNamespace[];
  readonly uidMappings: readonly IdMapping[];
  readonly gidMappings: readonly IdMapping[];
  readonly sysctl: Readonly<Record<string, string>>;
  /** linux.resources, decoded into what the cgroup code takes. */
  readonly resources?: ResourceLimits;
  readonly cgroupsPath?: string;
  readonly maskedPaths: readonly string[];
  readonly readonlyPaths: readonly string[];
  /** linux.seccomp, decoded into the profile security/seccomp compiles. */
  readonly seccomp?: SeccompProfile;
  /** Device nodes to create in the container's /dev. */
  readonly devices: readonly OciDevice[];
  /** MS_* propagation flags for the container's /; absent: the runtime's default. */
  readonly rootfsPropagation?: number;
}

export interface OciDevice {
  /** Absolute, inside the container. */
  readonly path: string;
  /** `u` is an unbuffered character device (made as `c`); `p` a FIFO. */
  readonly type: "c" | "b" | "u" | "p";
  readonly major: number;
  readonly minor: number;
  readonly fileMode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

const LINUX: Shape = {
  namespaces: "read",
  uidMappings: "read",
  gidMappings: "read",
  sysctl: "read",
  resources: "read",
  cgroupsPath: "read",
  maskedPaths: "read",
  readonlyPaths: "read",
  seccomp: "read",
  devices: "read",
  rootfsPropagation: "read",
  mountLabel: "refuse-unless-empty",
  personality: "refuse",
  intelRdt: "refuse",
  timeOffsets: "refuse",
  // runtime-spec 1.3, past what gcr reads.
  netDevices: "refuse",
  memoryPolicy: "refuse",
};

const asNamespaces: Read<OciNamespace[]> = (value, path) => {
  const seen = new Set<string>();
  return list<OciNamespace>((entry, at) => {
    const namespace = new Fields(entry, at, { type: "read", path: "read" });
    const type = namespace.required("type", asString);
    // A time namespace needs linux.timeOffsets written before its first process, which gcr does not do.
    if (type === "time") fail(namespace.at("type"), "time is not supported by gcr");
    if (!Object.hasOwn(NAMESPACE_FLAGS, type)) {
      fail(
        namespace.at("type"),
        `must be one of ${Object.keys(NAMESPACE_FLAGS).join(", ")}, not ${JSON.stringify(type)}`,
      );
    }
    if (seen.has(type)) fail(namespace.at("type"), `repeats ${type}`);
    seen.add(type);
    const nsPath = namespace.optional("path", asAbsolutePath);
    const known = type as NamespaceType;
    return { type: known, flag: NAMESPACE_FLAGS[known], ...(nsPath ? { path: nsPath } : {}) };
  })(value, path);
};

const asIdMapping: Read<IdMapping> = (value, path) => {
  const mapping = new Fields(value, path, { containerID: "read", hostID: "read", size: "read" });
  return {
    inside: mapping.required("containerID", asUint32),
    outside: mapping.required("hostID", asUint32),
    count: mapping.required("size", integer(1, 0xffff_ffff)),
  };
};

const asDevice: Read<OciDevice> = (value, path) => {
  const device = new Fields(value, path, {
    path: "read",
    type: "read",
    major: "read",
    minor: "read",
    fileMode: "read",
    uid: "read",
    gid: "read",
  });
  const type = device.required("type", oneOf(["c", "b", "u", "p"] as const));
  // A FIFO has no device number; every other node needs one.
  const number = (key: string) =>
    type === "p" ? device.or(key, asUint32, 0) : device.required(key, integer(0, 0xffff_ffff));
  return {
    path: device.required("path", asAbsolutePath),
    type,
    major: number("major"),
    minor: number("minor"),
    // Engines pass stat's st_mode, file type bits included (podman: 0o20666
    // for a character device); the type comes from `type`, so only the
    // permission bits are kept.
    ...optionalEntry("fileMode", device.optional("fileMode", (v, p) => integer(0, 0o177777)(v, p) & 0o7777)),
    ...optionalEntry("uid", device.optional("uid", asUint32)),
    ...optionalEntry("gid", device.optional("gid", asUint32)),
  };
};

export const asLinux: Read<OciLinux> = (value, path) => {
  const linux = new Fields(value, path, LINUX);
  const resources = linux.optional("resources", asResources);
  const cgroupsPath = linux.optional("cgroupsPath", asCString);
  const seccomp = linux.optional("seccomp", asSeccomp);
  const rootfsPropagation = linux.optional("rootfsPropagation", asPropagation);
  return {
    namespaces: linux.or("namespaces", asNamespaces, []),
    uidMappings: linux.or("uidMappings", list(asIdMapping), []),
    gidMappings: linux.or("gidMappings", list(asIdMapping), []),
    sysctl: linux.or("sysctl", asStringMap, {}),
    ...(resources ? { resources } : {}),
    ...(cgroupsPath === undefined ? {} : { cgroupsPath }),
    maskedPaths: linux.or("maskedPaths", list(asAbsolutePath), []),
    readonlyPaths: linux.or("readonlyPaths", list(asAbsolutePath), []),
    ...(seccomp ? { seccomp } : {}),
    devices: linux.or("devices", list(asDevice), []),
    ...(rootfsPropagation === undefined ? {} : { rootfsPropagation }),
  };
};
