/**
 * What a container is to be, decided before anything runs. Steps turn a plan
 * into data; nothing here touches the system.
 *
 * @module
 */
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

/**
 * A process's five capability sets (capabilities(7)), as capability
 * numbers: what the chain leaves the process with just before it execs the
 * command. What the command then has follows the kernel's exec rules: a
 * uid 0 command gets its bounding set and inheritable set as effective and
 * permitted (root's file sets count as full), any other uid gets only the
 * ambient set, and the bounding and inheritable sets pass through the exec.
 */
export interface CapabilitySets {
  /** The most any exec can ever give the process (and its children). */
  readonly bounding: ReadonlySet<number>;
  /** What the kernel checks for each privileged operation. */
  readonly effective: ReadonlySet<number>;
  /** The most the effective set may hold, and what capset can never raise again once dropped. */
  readonly permitted: ReadonlySet<number>;
  /** What an exec of a program with matching file inheritable capabilities passes on. */
  readonly inheritable: ReadonlySet<number>;
  /** What an exec of an ordinary program keeps as permitted and effective; a subset of permitted and inheritable. */
  readonly ambient: ReadonlySet<number>;
}

/**
 * Docker's shape of the five sets: one set for bounding, effective and
 * permitted, inheritable and ambient empty (Docker since 20.10 keeps
 * inheritable empty: CVE-2022-24769, where a non-empty one let a program
 * with file inheritable capabilities gain them). `gcr run`'s sets, a
 * config.json without capabilities, and a container recorded by a gcr that
 * kept one set.
 */
export function singleSet(keep: Iterable<number>): CapabilitySets {
  const set = new Set(keep);
  return { bounding: set, effective: set, permitted: set, inheritable: new Set(), ambient: new Set() };
}

/** What the container's first process may do: Docker's defaults unless asked otherwise. */
export interface SecurityPlan {
  /** The five capability sets the process execs with (before the exec's own rules). */
  readonly capabilities: CapabilitySets;
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
  /**
   * Whether gcr hands the container its terminal's foreground (the exec
   * step's hand-terminal, which makes the child wait at a gate for it):
   * false when none of gcr's stdin, stdout and stderr is a terminal, so
   * that the child runs on to its exec; absent: decided as it runs.
   */
  readonly foreground?: boolean;
  /** The container's cgroup, when it has limits: how it was made, and its cgroup.procs files. */
  readonly cgroup?: { readonly setup: readonly string[]; readonly procs: readonly string[] };
  /**
   * `-d`: the container is made the child of gcr's parent, gcr-monitor
   * (ffi/monitor.S), which outlives this gcr and waits for it.
   */
  readonly monitored?: boolean;
}

export interface ContainerUser {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary group ids, set with setgroups (empty: none). */
  readonly groups: readonly number[];
  /** The passwd entry's name, when there is one. */
  readonly name?: string;
  /** The passwd entry's home, or "/". */
  readonly home: string;
}

/** A volume as the steps need it. */
export interface Volume {
  /** Absolute, symlink-free host path. */
  readonly host: string;
  /** The container path as given. */
  readonly target: string;
  /** The path inside the container's root, symlinks resolved (starts with `/`). */
  readonly resolved: string;
  readonly readOnly: boolean;
}

/** What connecting one container needs, decided before the clone. */
export interface BridgeAttachment {
  readonly id: string;
  /** How NAT is done: nftables, or iptables where the host has no nft. */
  readonly nat: NatBackend;
  readonly lease: Lease;
  readonly prefixLength: number;
  /** The host end of the veth pair (the container's end is `eth0`). */
  readonly hostVeth: string;
  readonly ports: readonly PortMapping[];
}

export type NatBackend = "nft" | "iptables";

/** One container's address. */
export interface Lease {
  containerId: string;
  /** `10.88.0.2` */
  address: string;
  /** `10.88.0.2/16`: what goes on the container's interface. */
  cidr: string;
  /** `10.88.0.1`: the bridge's address, the container's default route. */
  gateway: string;
  /** The process whose life the lease follows. */
  pid: number;
  /** That process's start time in clock ticks since boot, against pid reuse. */
  startTime: number;
}

/** One `-p [host-ip:]host-port:container-port[/tcp|/udp]`. */
export interface PortMapping {
  readonly hostIp?: string;
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: "tcp" | "udp";
}

/** Mount points gcr mounts over; each must be a real directory in the rootfs. */
export const MOUNT_POINTS = ["proc", "dev", "sys", "tmp"] as const;
