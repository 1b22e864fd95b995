/**
 * `gcr run`: finds (or pulls) the image, makes the container's state, its
 * cgroup and network, runs the plan's steps and waits; with -d, starts
 * itself again as the container's monitor (commands/monitor.ts) and returns.
 *
 * @module
 */
import { assertSupportedPlatform } from "../ffi/constants.ts";
import { readTextOr } from "../host/files.ts";
import { findRootfs, isPath, rootfsDir } from "../image/rootfs.ts";
import { log, runningAs, setQuiet } from "../output/log.ts";
import { attachToBridge, detachFromBridge } from "../net/attach.ts";
import { etcFiles } from "../plan/etc_files.ts";
import { checkMountPoints, execContextOf, hasLimits, planFor } from "../plan/run_plan.ts";
import { prepareMountPoint, prepareVolume } from "../plan/volumes.ts";
import { runSteps } from "../runner/runner.ts";
import { StepError } from "../runner/step_error.ts";
import type { ExitStatus } from "../ffi/child.ts";
import { sealedMonitor } from "../ffi/monitor.ts";
import { libc } from "../ffi/libc.ts";
import { type ContainerPaths, containerPaths } from "../state/paths.ts";
import { processStart } from "../host/processes.ts";
import { createContainerState, removeContainer } from "../state/containers.ts";
import { type ContainerRecord, markStarted, updateRecord } from "../state/records.ts";
import { OVERLAY_HINT, overlayUnsafePath } from "../steps/mount_overlay.ts";
import { containerSteps } from "../steps/pipeline.ts";
import { parseRunArgs } from "./run_args.ts";
import { UsageError } from "./usage.ts";
import type { ContainerCgroup } from "../cgroup/container_cgroup.ts";
import { type BridgeAttachment, MOUNT_POINTS, type Volume } from "../steps/plan.ts";

/** Loose: what might be an image reference (`ubuntu`, `ubuntu:20.04`, `host:5000/a/b@sha256:…`). */
const REFERENCE_LIKE = /^(?:docker:\/\/)?[A-Za-z0-9][A-Za-z0-9._:\/@-]*$/;

/**
 * The rootfs of `image`, pulled first when it is not a folder but looks like
 * a reference. The pull code is imported only then: `gcr run`'s start-up
 * does not load it.
 */
async function findOrPull(image: string, dir: string, quiet: boolean): Promise<string> {
  try {
    return findRootfs(image, dir);
  } catch (error) {
    const local = isPath(image) && (image.startsWith("/") || image.startsWith("."));
    if (image === "busybox" || local || !REFERENCE_LIKE.test(image)) throw error;
    const { pullForRun } = await import("./pull.ts");
    let pulled: string;
    try {
      pulled = await pullForRun(image, dir, quiet);
    } catch (pullError) {
      throw new Error(`${(error as Error).message}: cannot pull ${image}: ${(pullError as Error).message}`);
    }
    return findRootfs(pulled, dir);
  }
}

/** `--rootfs-copy`: the image copied into `merged` (with its missing mount points), to be bound onto itself. */
async function copyImage(rootfs: string, merged: string): Promise<void> {
  const copy = await new Deno.Command("cp", { args: ["-a", "--", `${rootfs}/.`, merged], stderr: "piped" }).output();
  if (!copy.success) {
    throw new Error(`--rootfs-copy: cp -a ${rootfs} failed: ${new TextDecoder().decode(copy.stderr).trim()}`);
  }
  for (const name of MOUNT_POINTS) {
    try {
      Deno.mkdirSync(`${merged}/${name}`, { mode: 0o755 });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  }
}

/** How a run reports to a detached container's monitor (see detach). */
export interface RunObserver {
  /** The container is registered: a monitor points its output at the log now. */
  readonly registered?: (paths: ContainerPaths) => void;
  /** The command runs. */
  readonly started?: (id: string) => void;
  /**
   * gcr-monitor, this gcr's parent: the container is made its child, this
   * gcr returns once the command runs, and `gcr __exited` (which the
   * monitor becomes) takes the container apart when it ends.
   */
  readonly monitor?: { readonly pid: number; readonly start: string };
}

/** `gcr run …` (and, with an observer, the run a monitor makes). */
export async function runCommand(argv: readonly string[], observer: RunObserver = {}): Promise<number> {
  const args = parseRunArgs(argv);
  // A detached container's log holds its own output, as docker logs shows it.
  setQuiet(args.quiet || args.detach);
  assertSupportedPlatform();
  if (args.detach && !observer.started) {
    if (args.mode !== "run") throw new UsageError("-d cannot be combined with --trace or --step: they need a terminal");
    return await detach(argv);
  }
  if (args.network === "bridge" && Deno.uid() !== 0) {
    throw new Error(
      "--net bridge needs root: it makes a bridge, veth pairs and NAT rules on the host (rootless: --net none or --net host)",
    );
  }
  const dir = rootfsDir(args.rootfsDir);
  const rootfs = await findOrPull(args.image, dir, args.quiet);
  // mount(2) follows symlinks: /proc -> /etc in an image must not put proc over anything.
  const missing = checkMountPoints(rootfs);
  // Checked before anything is made, so a bad -v leaves no container folder.
  for (const spec of args.volumes) prepareVolume(spec, rootfs, undefined);
  let plan = await planFor(args, () => rootfs);
  for (const path of [rootfs, plan.overlay?.upper ?? ""]) {
    if (!args.rootfsCopy && overlayUnsafePath(path)) {
      throw new Error(`${path} contains ",", ":" or "\\", which overlay's options cannot carry: rename it`);
    }
  }
  const paths = containerPaths(plan.id);
  const record: ContainerRecord = {
    id: plan.id,
    ...(args.name !== undefined ? { name: args.name } : {}),
    image: args.image,
    rootfs,
    command: [...args.command],
    created: new Date().toISOString(),
    pid: observer.monitor?.pid ?? Deno.pid,
    pidStart: observer.monitor?.start ?? processStart(Deno.pid) ?? "",
    status: "creating",
    ...(args.detach ? { detached: true } : {}),
    ...(args.remove ? { remove: true } : {}),
    ...(args.limits.memoryBytes !== undefined ? { memoryBytes: args.limits.memoryBytes } : {}),
  };
  createContainerState(paths, record, missing);
  observer.registered?.(paths);
  log(runningAs(Deno.pid, Deno.uid() ?? 0, Deno.gid() ?? 0));
  let cgroup: ContainerCgroup | undefined;
  let exitStatus: number | undefined;
  let bridge: BridgeAttachment | undefined;
  let handedOver = false;
  if (observer.monitor) plan = { ...plan, monitored: true };
  try {
    if (args.network === "bridge") {
      bridge = await attachToBridge(plan.id, args.publish, record.pid);
      plan = { ...plan, bridge };
      updateRecord(paths, { network: bridge });
    }
    if (args.rootfsCopy) await copyImage(rootfs, paths.merged);
    // Resolved in the image (or its copy); mount points made in upper, never in the image.
    const [image, upper] = args.rootfsCopy ? [paths.merged, paths.merged] : [rootfs, paths.upper];
    // The container's own /etc/hostname, hosts and resolv.conf, bound first so
    // that a -v onto one of them is mounted on top and wins. gcr's own files:
    // unlike a -v's host path, nothing to resolve or check.
    const generated = etcFiles(
      plan.hostname,
      plan.network,
      args.dns,
      readTextOr("/etc/resolv.conf"),
      bridge?.lease.address,
    ).flatMap(
      ([target, text]): Volume[] => {
        const file = `${paths.dir}/${target.slice("/etc/".length)}`;
        Deno.writeTextFileSync(file, text, { mode: 0o644 });
        try {
          const resolved = prepareMountPoint(`${file}:${target}`, target, { path: file, isDir: false }, image, upper);
          return [{ host: file, target, resolved, readOnly: false }];
        } catch {
          return []; // an image whose /etc/hosts leads out of it keeps its own
        }
      },
    );
    const volumes = [...generated, ...args.volumes.map((spec) => prepareVolume(spec, image, upper))];
    plan = { ...plan, volumes };
    if (hasLimits(args.limits)) {
      // Loaded only with limits: without, gcr run needs none of the cgroup code.
      const [{ createContainerCgroup }, { CgroupUnavailableError }, { showCgroupOp }] = await Promise.all([
        import("../cgroup/container_cgroup.ts"),
        import("../cgroup/hierarchies.ts"),
        import("../cgroup/ops.ts"),
      ]);
      try {
        // Recorded before they exist, as create does: a gcr killed while
        // making them leaves folders that rm and prune then find (a missing
        // one is no error).
        cgroup = createContainerCgroup(plan.id, args.limits, {}, (cgroups) => updateRecord(paths, { cgroups }));
      } catch (error) {
        // Limits that cannot be had are an error unless the user said to go
        // on without them: a container silently unlimited is a surprise.
        if (!(error instanceof CgroupUnavailableError) || !args.limitsOptional) throw error;
        console.error(`gcr: running without limits (--limits-optional): ${error.message}`);
      }
      if (cgroup) {
        plan = {
          ...plan,
          cgroup: { setup: cgroup.ops.map(showCgroupOp), procs: cgroup.paths.map((path) => `${path}/cgroup.procs`) },
        };
        updateRecord(paths, { cgroups: [...cgroup.paths] });
      }
    }
    const running = plan;
    let status;
    try {
      status = await runSteps(containerSteps(plan), args.mode, {
        detach: observer.monitor !== undefined,
        // What gcr exec and stop need, written while the child mounts its root.
        whileChildRuns: (pid) =>
          updateRecord(paths, { initPid: pid, initStart: processStart(pid) ?? "", exec: execContextOf(running) }),
        onExec: () => {
          markStarted(paths);
          observer.started?.(running.id);
        },
      });
    } catch (error) {
      if (error instanceof StepError && error.step === "mount-overlay") {
        throw new StepError(error.step, new Error(`${(error.cause as Error).message}: ${OVERLAY_HINT}`));
      }
      throw error;
    }
    if ("running" in status) {
      handedOver = true;
      return 0;
    }
    exitStatus = exitStatusOf(status, cgroup, args.limits.memoryBytes);
    return exitStatus;
  } catch (error) {
    exitStatus = error instanceof StepError ? error.exitCode : 125;
    throw error;
  } finally {
    if (!handedOver) await takeApart(plan.id, paths, { cgroup, bridge, remove: args.remove, exitStatus });
  }
}

/** The status gcr reports for how the container's first process ended, saying so when the kernel OOM-killed it. */
export function exitStatusOf(status: ExitStatus, cgroup: ContainerCgroup | undefined, memoryBytes?: number): number {
  if (cgroup?.wasOomKilled("signaled" in status ? status.signaled : null)) {
    // Said even with -q: it is why the command died.
    console.error(
      `gcr: the container was OOM-killed: it needed more than its --memory limit (${memoryBytes} bytes)`,
    );
  }
  return "exited" in status ? status.exited : 128 + status.signaled;
}

/**
 * What follows a container's end, in the gcr that waited for it (or gcr
 * __exited, for a detached one): its cgroup and bridge port go, then its
 * folders (--rm) or its record says how it ended.
 */
export async function takeApart(
  id: string,
  paths: ContainerPaths,
  parts: { cgroup?: ContainerCgroup; bridge?: BridgeAttachment; remove?: boolean; exitStatus?: number },
): Promise<void> {
  await parts.cgroup?.remove();
  if (parts.bridge) {
    try {
      await detachFromBridge(parts.bridge);
    } catch (error) {
      console.error(`gcr: ${(error as Error).message}`);
    }
  }
  try {
    if (parts.remove) await removeContainer({ id, paths });
    else {
      updateRecord(paths, {
        status: "stopped",
        exitStatus: parts.exitStatus ?? 125,
        finished: new Date().toISOString(),
        cgroups: [],
      });
    }
  } catch (error) {
    // The container's own status matters more: say what was left, and go on.
    console.error(`gcr: container ${id}: ${(error as Error).message}`);
  }
}

/** How to start gcr again: the ./gcr script (which says where it is), else Deno on this main module. */
function selfCommand(): string[] {
  const script = Deno.env.get("GCR_SELF");
  if (script) return [script];
  return [Deno.execPath(), "run", "-A", "--quiet", new URL(Deno.mainModule).pathname];
}

/**
 * `gcr run -d`: the container needs a parent that waits for it, records its
 * exit status and outlives this command, as conmon or containerd-shim are
 * for other runtimes. That parent is gcr-monitor (ffi/monitor.S), a few
 * hundred bytes of code that never run JavaScript, in its own session
 * (closing the terminal does not end it): it runs gcr again (`__monitor`)
 * to make the container as its child, and when the container ends becomes
 * `gcr __exited`, which records the end and takes the container apart. This
 * command returns once that gcr says the command runs, printing the id, or
 * with the error that stopped it.
 */
async function detach(argv: readonly string[]): Promise<number> {
  const [program, ...prefix] = selfCommand();
  // Run from its sealed memfd through /proc/self/fd (as fexecve does): the
  // descriptor is close-on-exec, and exec has opened it before it closes.
  const code = sealedMonitor();
  let monitor: Deno.ChildProcess;
  try {
    monitor = new Deno.Command(`/proc/self/fd/${code}`, {
      args: [program!, ...prefix, "__monitor", ...argv],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  } finally {
    libc().close(code);
  }
  const report = (await new Response(monitor.stdout).text()).trim();
  const started = report.match(/^started (\S+)$/);
  if (started) {
    monitor.unref();
    console.log(started[1]);
    return 0;
  }
  const failed = report.match(/^error (\d+) ([^]*)$/);
  if (failed) {
    console.error(`gcr: ${failed[2]}`);
    return Number(failed[1]);
  }
  const { code: status } = await monitor.status;
  console.error(`gcr: the container's monitor ended (exit ${status}) before the container started`);
  return 125;
}
