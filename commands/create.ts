/**
 * `gcr create`: config.json read, the container's record and cgroup made, and
 * every step run but the command's exec: its first process waits at the
 * start FIFO for `gcr start`.
 *
 * @module
 */

import { observedIds } from "../security/namespace_ids.ts";
import { setQuiet } from "../output/log.ts";
import { chainLayout } from "../ffi/chain.ts";
import { AT_FDCWD, F_GETFD, O, S_IFIFO, SIGNALS } from "../ffi/constants.ts";
import { lastErrno, SyscallError } from "../ffi/errno.ts";
import { sendSignal } from "../ffi/signal.ts";
import { libc } from "../ffi/libc.ts";
import { cString, moveFdAbove, openFd } from "../ffi/fds.ts";
import { removeTree, writeFileAtomically } from "../host/files.ts";
import { runSteps } from "../runner/runner.ts";
import { registerContainer } from "../state/containers.ts";
import { detachHostMounts } from "../state/host_mounts.ts";
import { deletePlan, writeDeletePlan } from "./delete_plan.ts";
import { writeStartPlan } from "./start_plan.ts";
import { runLateHooks } from "./oci_container.ts";
import { containerPaths } from "../state/paths.ts";
import { processStart } from "../host/processes.ts";
import { type ContainerRecord, execContext, readRecord, updateRecord } from "../state/records.ts";
import { countFlag, parseFlags } from "./flags.ts";
import { NS_FILE, ociSteps, processEnv } from "../oci/plan.ts";
import { containerRoot } from "../oci/container_root.ts";
import { lookPathProblem } from "../oci/look_path.ts";
import { securityPlan } from "../oci/security_plan.ts";
import { oneId } from "./oci_container.ts";
import { tracingToFile } from "../output/trace.ts";
import { connectUnix } from "../ffi/unix_socket.ts";
import { readSpec } from "../oci/spec/spec.ts";
import { showCgroupOp } from "../cgroup/ops.ts";
import { type CgroupHost, detectCgroups } from "../cgroup/hierarchies.ts";
import type { ContainerCgroup } from "../cgroup/container_cgroup.ts";
import { createOciCgroup } from "./oci_cgroup.ts";
import { rootlessCgroups } from "../host/rootless.ts";

/** The v1 hierarchies a `cgroup` mount shows: the container's own folder in each, else gcr's. */
function cgroupHierarchies(host: CgroupHost, cgroup: ContainerCgroup | undefined): { name: string; dir: string }[] {
  if (host.version === 2) return [];
  return host.hierarchies.map((h) => ({
    name: h.mount.slice(h.mount.lastIndexOf("/") + 1),
    dir: cgroup?.paths.find((path) => path.startsWith(h.mount + "/")) ?? h.dir,
  }));
}

/** `gcr create`: the container, set up and waiting for `gcr start`. */
export async function createCommand(args: readonly string[], systemdCgroup: boolean): Promise<number> {
  const { flags, rest } = parseFlags(
    args,
    {
      bundle: "value",
      "pid-file": "value",
      "console-socket": "value",
      "no-pivot": "bool",
      "preserve-fds": "value",
      "no-new-keyring": "bool",
      // gcr's own: every step, call and hook on stderr as it runs (gcr run --trace's output).
      trace: "bool",
    },
    { b: "bundle" },
    "create",
  );
  const id = oneId(rest, "create");
  const preserved = countFlag(flags, "preserve-fds", "create");
  for (let fd = 3; fd < 3 + preserved; fd++) {
    if (libc().fcntl(fd, F_GETFD, 0) === -1) {
      throw new Error(`--preserve-fds ${preserved}: descriptor ${fd} is not open`);
    }
  }
  const layout = chainLayout(preserved);
  // gcr's own descriptors for the child go above every number its prologue writes to.
  const inheritable = (fd: number) => moveFdAbove(fd, layout.firstFree + 16);
  const bundle = flags.get("bundle") ?? Deno.cwd();
  const spec = readSpec(bundle);
  // Refusals by field come before anything is made.
  const security = securityPlan(spec);
  if (systemdCgroup && spec.linux.cgroupsPath?.includes(":")) {
    throw new Error(
      `--systemd-cgroup: gcr manages cgroups itself (cgroupfs); ${spec.linux.cgroupsPath} is a systemd unit path`,
    );
  }
  const paths = containerPaths(id);
  const record: ContainerRecord = {
    id,
    image: spec.bundle,
    rootfs: spec.root.path,
    command: [...spec.process.args],
    created: new Date().toISOString(),
    pid: Deno.pid,
    pidStart: processStart(Deno.pid) ?? "",
    status: "creating",
    bundle: spec.bundle,
    annotations: { ...spec.annotations },
  };
  registerContainer(paths, record);
  const open: number[] = [];
  let cgroup: ContainerCgroup | undefined;
  let created = false;
  try {
    for (const fifo of [paths.startFifo, paths.reportFifo]) {
      if (libc().mknodat(AT_FDCWD, cString(fifo), S_IFIFO | 0o600, 0n) === -1) {
        throw new SyscallError(`mknod(${fifo}, S_IFIFO)`, lastErrno());
      }
    }
    // Read and write: the child holds both ends of each, so its read of the
    // start FIFO blocks until gcr start writes (never end-of-file), gcr
    // start's non-blocking open finds a reader exactly while the child
    // lives, and the child's reports never meet a FIFO without a reader.
    const fifo = inheritable(openFd(paths.startFifo, O.RDWR));
    open.push(fifo);
    const report = inheritable(openFd(paths.reportFifo, O.RDWR));
    open.push(report);
    const socketPath = flags.get("console-socket");
    const consoleSocket = socketPath ? inheritable(connectUnix(socketPath)) : undefined;
    if (consoleSocket !== undefined) open.push(consoleSocket);

    const host = detectCgroups();
    // Recorded before they exist: a create killed while making them leaves
    // folders that delete --force then finds (a missing one is no error).
    cgroup = createOciCgroup(id, spec, rootlessCgroups(), (cgroups) => updateRecord(paths, { cgroups }));
    if (cgroup) updateRecord(paths, { cgroups: [...cgroup.paths, ...cgroup.created] });
    // Recorded before they are made, as the cgroups are: delete detaches them.
    if (!spec.linux.namespaces.some((n) => n.type === "mount")) updateRecord(paths, { hostMounts: [spec.root.path] });
    const { startContainer, poststart, poststop } = spec.hooks;
    if (startContainer.length || poststart.length || poststop.length) {
      updateRecord(paths, {
        hooks: { startContainer: [...startContainer], poststart: [...poststart], poststop: [...poststop] },
      });
    }
    // HOME from the image's /etc/passwd, read once: the exec step and the record take the same.
    const env = processEnv(spec);
    const steps = ociSteps(spec, {
      preserved,
      startFifo: fifo,
      reportFifo: report,
      ...(consoleSocket !== undefined ? { consoleSocket } : {}),
    }, {
      id,
      noPivot: flags.has("no-pivot"),
      ...(cgroup
        ? { cgroup: { setup: cgroup.ops.map(showCgroupOp), procs: cgroup.paths.map((p) => `${p}/cgroup.procs`) } }
        : {}),
      cgroupHierarchies: cgroupHierarchies(host, cgroup),
      cgroupVersion: host.version === 2 ? 2 : 1,
      env,
    }, security);
    const inherit = [
      { from: fifo, to: layout.firstFree },
      { from: report, to: layout.firstFree + 1 },
      ...(consoleSocket !== undefined ? [{ from: consoleSocket, to: layout.firstFree + 2 }] : []),
    ];
    // --trace-dir traces every create into the container's file; --trace, onto stderr.
    const mode = flags.has("trace") || tracingToFile() ? "trace" : "run";
    if (flags.has("trace")) setQuiet(false);
    const outcome = await runSteps(steps, mode, { inherit, detach: true, layout });
    if (!("running" in outcome)) throw new Error("the container's process ended before it reached the start gate");
    const pid = outcome.running;
    // As runc's init before it waits for start: a command that cannot run
    // fails create, in runc's words (engines turn them into 127 or 126).
    // Only through the container's own root, as it sees it with its mounts:
    // the image folder alone (where the kernel refuses that link, rootless)
    // lacks its volumes, and a command in one would be refused wrongly; that
    // command's exec is then judged at start, as before.
    const root = containerRoot(pid, spec.root.path);
    const seen = root === `/proc/${pid}/root`;
    const problem = seen ? lookPathProblem(spec.process.args[0] ?? "", env, root, spec.process.cwd) : undefined;
    if (problem) {
      try {
        sendSignal(pid, SIGNALS.SIGKILL); // waiting at its start gate; without a cgroup nothing else would end it
      } catch { /* the problem is the error to report */ }
      throw new Error(`unable to start container process: ${problem}`);
    }
    const exec = execContext({
      env,
      workdir: spec.process.cwd,
      // What the kernel shows, not config.json's mappings: those are empty
      // for a container without a user namespace (the host's ids) or one
      // that joins a namespace by path, and an exec's user is checked
      // against these.
      ids: { ...observedIds(pid), writer: Deno.uid() === 0 ? "root" : "user" },
      security,
      cgroupProcs: cgroup ? cgroup.paths.map((p) => `${p}/cgroup.procs`) : [],
      namespaces: spec.linux.namespaces.map((n) => NS_FILE[n.type]),
    });
    const final = updateRecord(paths, { status: "created", initPid: pid, initStart: processStart(pid) ?? "", exec });
    // What delete will do once it has stopped, for ./gcr to do without Deno (commands/delete_plan.ts).
    const plan = final && deletePlan(final, paths);
    if (plan) writeDeletePlan(paths, plan);
    // And whether its start is only the gate, which ./gcr then opens itself (commands/start_plan.ts).
    if (final) writeStartPlan(paths, final);
    const pidFile = flags.get("pid-file");
    if (pidFile) writeFileAtomically(pidFile, String(pid), 0o644);
    created = true;
    return 0;
  } finally {
    for (const fd of open) libc().close(fd);
    if (!created) {
      await cgroup?.remove();
      const record = readRecord(paths);
      detachHostMounts(record?.hostMounts ?? []);
      removeTree(paths.run);
      // The spec's lifecycle: a failed create is destroyed, then its poststop hooks run.
      if (record) await runLateHooks(record, "poststop");
    }
  }
}
