/**
 * `gcr run`'s arguments as a plan (steps/plan.ts): the container's id,
 * environment, user, hardening, ids and network, decided before anything
 * runs; and what `gcr exec` will need of it later.
 *
 * @module
 */
import { requireStaticInit } from "../host/init.ts";
import { lstatIfPresent } from "../ffi/present.ts";
import { resolveCapabilities } from "../security/capabilities.ts";
import { containerPaths } from "../state/paths.ts";
import { type ExecContext, execContext } from "../state/records.ts";
import { INIT_PATH } from "../steps/bind_init.ts";
import { type ContainerPlan, MOUNT_POINTS, type PortMapping, singleSet } from "../steps/plan.ts";
import type { RunMode } from "../runner/runner.ts";
import { newContainerId } from "./container_id.ts";
import { planIds } from "./id_maps.ts";
import { seccompProgram } from "../security/seccomp/docker.ts";
import type { ResourceLimits } from "../cgroup/limits.ts";

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface RunArgs {
  mode: RunMode;
  quiet: boolean;
  env: string[];
  workdir: string;
  hostname?: string;
  network: "none" | "host" | "bridge";
  /** `-p [host-ip:]host-port:container-port[/proto]`, with --net bridge. */
  publish: PortMapping[];
  rootfsDir?: string;
  image: string;
  command: string[];
  limits: ResourceLimits;
  capAdd: string[];
  capDrop: string[];
  /** `--security-opt seccomp=…`: a profile file or `unconfined`; absent: gcr's default profile. */
  seccomp?: string;
  noNewPrivs: boolean;
  /** `--user name|uid[:group|gid]`. */
  user?: string;
  /** `-v host:container[:ro]`, as given. */
  volumes: string[];
  /** `--rm`: remove the state folder when the container exits. */
  remove: boolean;
  /** `--rootfs-copy`: a copy of the image instead of an overlay. */
  rootfsCopy: boolean;
  /** `--init`: a real init as pid 1. */
  init: boolean;
  /** `--limits-optional`: run without limits where the host cannot give them (rootless on cgroup v1). */
  limitsOptional: boolean;
  /** `--dns ADDRESS`: name servers for the container's resolv.conf. */
  dns: string[];
  /** `--name`: a unique name to refer to the container by. */
  name?: string;
  /** `-d`: run in the background; the output goes to the container's log. */
  detach: boolean;
}

/** The container's environment: defaults, TERM from gcr's, then -e entries in order. */
export function containerEnv(hostname: string, extra: readonly string[], home = "/root"): string[] {
  const term = Deno.env.get("TERM");
  return mergeEnv(
    [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`, `HOME=${home}`, ...(term ? [`TERM=${term}`] : [])],
    extra,
  );
}

/** Whether any resource limit was asked for (then the container gets a cgroup). */
export function hasLimits(limits: ResourceLimits): boolean {
  return Object.values(limits).some((value) => value !== undefined);
}

export async function planFor(args: RunArgs, resolveRootfs: (image: string) => string): Promise<ContainerPlan> {
  const id = newContainerId();
  const hostname = args.hostname ?? id;
  const rootfs = resolveRootfs(args.image);
  const capabilities = resolveCapabilities(args.capAdd, args.capDrop);
  // The user is looked up in the image's own /etc/passwd and /etc/group, by
  // gcr: the child cannot read files once it runs only libc calls. Loaded
  // only for --user: with the in-root reader it needs, 13 KB a plain run
  // would load for nothing (~0.25 ms).
  const user = args.user === undefined
    ? undefined
    : (await import("../security/user.ts")).resolveUser(args.user, rootfs);
  const seccomp = seccompProgram(args.seccomp, capabilities);
  const init = args.init ? requireStaticInit() : undefined;
  const tty = terminal();
  const paths = containerPaths(id);
  return {
    id,
    hostname,
    rootfs,
    root: paths.merged,
    ...(args.rootfsCopy ? {} : { overlay: { upper: paths.upper, work: paths.work } }),
    volumes: [],
    // With --init, the init is pid 1 and runs the command as its child.
    argv: init ? [INIT_PATH, "--", ...args.command] : args.command,
    ...(init ? { init } : {}),
    ...(tty ? { console: tty } : {}),
    foreground: [Deno.stdin, Deno.stdout, Deno.stderr].some((stream) => stream.isTerminal()),
    env: containerEnv(hostname, args.env, user?.home),
    workdir: args.workdir,
    ids: planIds(),
    network: args.network,
    security: {
      // Docker's shape: inheritable and ambient empty (CVE-2022-24769).
      capabilities: singleSet(capabilities),
      noNewPrivs: args.noNewPrivs,
      maskPaths: true,
      ...(user ? { user } : {}),
      ...(seccomp ? { seccomp } : {}),
    },
  };
}

/** gcr's stdin when it is a terminal (`/dev/pts/3`), which bind-console shows the container as /dev/console. */
function terminal(): string | undefined {
  if (!Deno.stdin.isTerminal()) return undefined;
  try {
    const path = Deno.readLinkSync("/proc/self/fd/0");
    return /^\/dev\/(pts\/\d+|tty[A-Za-z0-9]*)$/.test(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

/** What `gcr exec` needs later, from the plan of the run. */
export function execContextOf(plan: ContainerPlan): ExecContext {
  return execContext({
    env: plan.env,
    workdir: plan.workdir,
    ids: plan.ids,
    security: plan.security,
    cgroupProcs: plan.cgroup?.procs ?? [],
    namespaces: ["user", "mnt", "pid", "uts", "ipc", ...(plan.network !== "host" ? ["net"] : []), "cgroup"],
  });
}

/**
 * Refuses an image whose mount points are symlinks: mount(2) follows them,
 * so an image with `/proc -> /etc` would have proc mounted over /etc (and,
 * with a symlink pointing out, over a host path). Missing mount points are
 * fine: returned, gcr makes them in the container's upper folder, never in
 * the image (createContainerState).
 */
export function checkMountPoints(rootfs: string): string[] {
  const missing: string[] = [];
  for (const name of MOUNT_POINTS) {
    const path = `${rootfs}/${name}`;
    const info = lstatIfPresent(path);
    if (!info) missing.push(name);
    if (info?.isSymlink) {
      throw new Error(`rootfs ${path} is a symlink (to ${Deno.readLinkSync(path)}): refusing to mount over it`);
    }
  }
  return missing;
}

/** KEY=VALUE entries: `base` with `extra` applied in order (a later key wins, in its old place). */
export function mergeEnv(base: readonly string[], extra: readonly string[]): string[] {
  const env = new Map<string, string>();
  for (const entry of [...base, ...extra]) {
    const at = entry.indexOf("=");
    env.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return [...env].map(([key, val]) => `${key}=${val}`);
}
