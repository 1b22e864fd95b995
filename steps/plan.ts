/**
 * What a container is to be, decided before anything runs. Steps turn a plan
 * into data; nothing here touches the system.
 *
 * @module
 */
import type { ContainerUser } from "../security/user.ts";
import type { Volume } from "../plan/volumes.ts";
import type { BridgeAttachment } from "../net/bridge.ts";
import type { IdMapping } from "./step.ts";

/** How the container's user and group ids map to the host's. */
export interface IdPlan {
  readonly uid: readonly IdMapping[];
  readonly gid: readonly IdMapping[];
  /**
   * `direct`: gcr writes uid_map/gid_map itself (as root, or the single-id
   * map an unprivileged user may write). `helper`: the set-uid newuidmap and
   * newgidmap write ranges from /etc/subuid and /etc/subgid.
   */
  readonly via: "direct" | "helper";
  /** `deny` is required before an unprivileged process may write gid_map. */
  readonly setgroups: "allow" | "deny";
  /**
   * Who writes the maps: root, or an ordinary user (directly or through
   * newuidmap), whom the kernel lets write only into a dumpable process's
   * /proc files (so that child is made non-dumpable after map-ids).
   */
  readonly writer: "root" | "user";
}

/** What the container's first process may do: Docker's defaults unless asked otherwise. */
export interface SecurityPlan {
  /** Capability numbers kept in the bounding, effective and permitted sets. */
  readonly capabilities: ReadonlySet<number>;
  /** `--user`: whom the command runs as; absent: root. */
  readonly user?: ContainerUser;
  /** The seccomp BPF program to install last; absent: unconfined. */
  readonly seccomp?: Uint8Array;
  readonly noNewPrivs: boolean;
  /** Masked and read-only /proc and /sys paths. */
  readonly maskPaths: boolean;
}

export interface ContainerPlan {
  /** 12 hex digits of a SHA-256 over time and random bytes. */
  readonly id: string;
  readonly hostname: string;
  /** Absolute, symlink-free path of the image's root filesystem folder (never written to). */
  readonly rootfs: string;
  /**
   * Where the container's / is assembled before the pivot: the overlay's
   * mount point `<state>/containers/<id>/merged` (or, with --rootfs-copy, a
   * copy of the image there). Every mount target before the pivot is in it.
   */
  readonly root: string;
  /** The overlay's upper and work folders; absent with --rootfs-copy (root is then a plain folder, bound). */
  readonly overlay?: { readonly upper: string; readonly work: string };
  /** `-v` volumes, checked and resolved by gcr. */
  readonly volumes: readonly Volume[];
  readonly argv: readonly string[];
  /** KEY=VALUE entries, in order. */
  readonly env: readonly string[];
  /** Working directory inside the container. */
  readonly workdir: string;
  readonly ids: IdPlan;
  /**
   * `none`: a new network namespace with only loopback; `host`: the host's;
   * `bridge`: a new one joined to the gcr0 bridge (`bridge` says how).
   */
  readonly network: "none" | "host" | "bridge";
  readonly bridge?: BridgeAttachment;
  readonly security: SecurityPlan;
  /** `--init`: the host's static init, bound at /dev/init and run as pid 1. */
  readonly init?: string;
  /** gcr's terminal (`/dev/pts/3`) when its stdin is one: bound at /dev/console. */
  readonly console?: string;
  /** The container's cgroup, when it has limits: how it was made, and its cgroup.procs files. */
  readonly cgroup?: { readonly setup: readonly string[]; readonly procs: readonly string[] };
}
