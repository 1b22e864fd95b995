/**
 * Where containers' state lives on the host, in two places:
 *
 *   <runtime dir>/<id>/{container.json,log,start.fifo,report.fifo,
 *                       start.plan,started,start.report,delete.plan}
 *       what runs: the record (status, pids, exit status), the output of a
 *       detached container, the OCI start gate and its reports, what start
 *       and delete will do and what start did (commands/start_plan.ts,
 *       commands/delete_plan.ts). /run/gcr as root, $XDG_RUNTIME_DIR/gcr
 *       rootless.
 *   <state dir>/containers/<id>/{upper,work,merged,…}     what the container
 *       wrote (the overlay's upper folder) and its generated /etc files.
 *       /var/lib/gcr as root, $XDG_DATA_HOME/gcr rootless.
 *
 * "As root" means the host's root: uid 0 in a user namespace of its own
 * (rootless podman starts its runtime so) is rootless, as runc has it
 * (host/rootless.ts).
 *
 * `$GCR_STATE` overrides the state directory (and then the runtime directory
 * is its `run` folder); `--root` or `$GCR_RUN` the runtime directory.
 *
 * @module
 */
import { resolvePath } from "../host/files.ts";
import { honoursXdgRuntimeDir } from "../host/rootless.ts";

/**
 * The state directory: $GCR_STATE, else /var/lib/gcr (root) or
 * $XDG_DATA_HOME/gcr. An engine may give its runtime neither $HOME nor
 * $XDG_DATA_HOME (conmon passes only $XDG_RUNTIME_DIR): OCI bundles keep no
 * data there, so the runtime directory's `data` folder stands in.
 */
export function stateDir(): string {
  const explicit = Deno.env.get("GCR_STATE");
  if (explicit) return resolvePath(explicit);
  if (!honoursXdgRuntimeDir()) return "/var/lib/gcr";
  const home = Deno.env.get("HOME");
  const data = Deno.env.get("XDG_DATA_HOME") || (home ? `${home}/.local/share` : undefined);
  return data ? `${data.replace(/\/+$/, "")}/gcr` : `${runtimeDir()}/data`;
}

/**
 * The runtime directory, where running containers' records live: `--root`
 * (which sets $GCR_RUN), else `$GCR_STATE/run` when a state directory is
 * given (tests), else /run/gcr (root) or $XDG_RUNTIME_DIR/gcr. It is on a
 * tmpfs, as runc's /run/runc: after a reboot no container runs. Without
 * $XDG_RUNTIME_DIR an ordinary user gets /tmp/gcr-<uid>, and uid 0 of a
 * user namespace /run/gcr as runc does (/tmp/gcr-0 would be every such
 * namespace's, whoever made it first). ./gcr finds it the same way for a
 * start and delete it runs without Deno (launch/gcr.S, try_native): change both.
 */
export function runtimeDir(): string {
  const explicit = Deno.env.get("GCR_RUN");
  if (explicit) return resolvePath(explicit);
  if (Deno.env.get("GCR_STATE")) return `${stateDir()}/run`;
  const runtime = honoursXdgRuntimeDir() ? Deno.env.get("XDG_RUNTIME_DIR") : undefined;
  if (runtime) return `${runtime.replace(/\/+$/, "")}/gcr`;
  return Deno.uid() === 0 ? "/run/gcr" : `/tmp/gcr-${Deno.uid()}`;
}

/** Whether the runtime directory is the default under $XDG_RUNTIME_DIR (no --root, $GCR_RUN or $GCR_STATE). */
export function runtimeDirIsXdg(): boolean {
  return !Deno.env.get("GCR_RUN") && !Deno.env.get("GCR_STATE") && honoursXdgRuntimeDir() &&
    !!Deno.env.get("XDG_RUNTIME_DIR");
}

/** Where one container's state lives. */
export interface ContainerPaths {
  /** The container's data: the overlay's folders (absent for OCI bundles). */
  dir: string;
  upper: string;
  work: string;
  merged: string;
  /** The runtime folder: record, log, the start FIFO. */
  run: string;
  record: string;
  log: string;
  /** OCI `create` leaves the container reading it; `start` writes one byte. */
  startFifo: string;
  /** OCI: where the created container's last reports go; `start` reads them (steps/exec.ts, StartGate). */
  reportFifo: string;
  /** OCI: create's word that a start is only the gate, which ./gcr then opens itself (commands/start_plan.ts). */
  startPlan: string;
  /** OCI: made when the gate opens; its mtime is the start time (readRecord). */
  started: string;
  /** OCI: what the container reported, when ./gcr opened the gate and left the report to Deno's start. */
  startReport: string;
}

/** Container ids and names: what runc accepts, and never a path (launch/gcr.S checks ids by the same rule). */
export const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

export function containerPaths(id: string, state = stateDir(), runtime = runtimeDir()): ContainerPaths {
  if (!CONTAINER_ID.test(id)) throw new Error(`invalid container id ${JSON.stringify(id)}`);
  const dir = `${state}/containers/${id}`;
  const run = `${runtime}/${id}`;
  return {
    dir,
    upper: `${dir}/upper`,
    work: `${dir}/work`,
    merged: `${dir}/merged`,
    run,
    record: `${run}/container.json`,
    log: `${run}/log`,
    startFifo: `${run}/start.fifo`,
    reportFifo: `${run}/report.fifo`,
    startPlan: `${run}/start.plan`,
    started: `${run}/started`,
    startReport: `${run}/start.report`,
  };
}
