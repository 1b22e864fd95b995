/**
 * `gcr explain run …` and `gcr explain create --bundle DIR`: the steps a run
 * or an engine's create would take, with every call, and nothing run or
 * made (not even the busybox image).
 *
 * @module
 */
import { isPath, rootfsDir } from "../image/rootfs.ts";
import { etcFiles } from "../plan/etc_files.ts";
import { hasLimits, planFor } from "../plan/run_plan.ts";
import { planContainerCgroup } from "../cgroup/plan.ts";
import { showCgroupOp } from "../cgroup/ops.ts";
import type { ResourceLimits } from "../cgroup/limits.ts";
import { prepareVolume } from "../plan/volumes.ts";
import { showChildCall, showHook, showParentOp } from "../runner/runner.ts";
import type { HookKind } from "../steps/hook_process.ts";
import { containerPaths } from "../state/paths.ts";
import { containerSteps } from "../steps/pipeline.ts";
import type { ContainerPlan } from "../steps/plan.ts";
import type { Step } from "../steps/step.ts";
import { parseRunArgs } from "./run_args.ts";
import { UsageError } from "./usage.ts";
import { parseFlags } from "./flags.ts";
import { chainLayout } from "../ffi/chain.ts";
import { detectCgroups } from "../cgroup/hierarchies.ts";
import { NS_FILE, ociSteps } from "../oci/plan.ts";
import { readSpec } from "../oci/spec/spec.ts";

/** `gcr explain run …`: the steps, without running anything. */
export function explain(steps: readonly Step[]): string {
  const lines: string[] = [];
  steps.forEach((step, index) => {
    lines.push(`${String(index + 1).padStart(2)}. ${step.name}: ${step.why}`);
    for (const op of step.parent) showParentOp(op).split("\n").forEach((line) => lines.push(`      gcr:   ${line}`));
    for (const call of step.child) showChildCall(call).forEach((line) => lines.push(`      ${line}`));
  });
  return lines.join("\n");
}

/**
 * `gcr explain create [--bundle DIR] [ID]`: the steps `gcr create` would
 * take for an engine's bundle (hooks included), with the descriptors it
 * would pass shown by the numbers they get; nothing is made.
 */
function explainCreate(args: readonly string[]): number {
  const { flags, rest } = parseFlags(args, { bundle: "value" }, { b: "bundle" }, "explain create");
  const spec = readSpec(flags.get("bundle") ?? Deno.cwd());
  const layout = chainLayout(0);
  const steps = ociSteps(spec, { preserved: 0, startFifo: layout.firstFree, reportFifo: layout.firstFree + 1 }, {
    id: rest[0] ?? "<id>",
    noPivot: false,
    cgroupHierarchies: [],
    cgroupVersion: detectCgroups().version === 2 ? 2 : 1,
  });
  const later: string[] = [];
  const runtime = { in: "runtime" as const, cwd: spec.bundle };
  const container = {
    in: "container" as const,
    join: { namespaces: spec.linux.namespaces.map((n) => NS_FILE[n.type]) },
  };
  const show = (verb: string, kind: HookKind, place: Parameters<typeof showHook>[3]) =>
    spec.hooks[kind].forEach((hook, i) => later.push(`      ${verb}: ${showHook(kind, i, hook, place)}`));
  show("gcr start", "startContainer", container);
  show("gcr start", "poststart", runtime);
  show("gcr delete", "poststop", runtime);
  console.log(explain(steps));
  if (later.length) console.log(`Later, the hooks of start and delete:\n${later.join("\n")}`);
  return 0;
}

/** `gcr explain run <image> …`, `gcr explain create [--bundle DIR]` */
export async function explainCommand(rest: readonly string[]): Promise<number> {
  if (rest[0] === "create") return explainCreate(rest.slice(1));
  if (rest[0] !== "run") {
    throw new UsageError(
      "explain takes a run or create command: gcr explain run <image> …, gcr explain create --bundle DIR",
    );
  }
  const args = parseRunArgs(rest.slice(1));
  const dir = rootfsDir(args.rootfsDir);
  const plan = await planFor(args, (image) => {
    try {
      return Deno.realPathSync(isPath(image) ? image : `${dir}/${image}`);
    } catch {
      return isPath(image) ? image : `${dir}/${image}`;
    }
  });
  // The generated /etc files as run would bind them (their host files
  // are written only by run, in the container's state folder).
  const state = containerPaths(plan.id);
  const generated = etcFiles(plan.hostname, plan.network, args.dns, "").map(([target]) => ({
    host: `${state.dir}/${target.slice("/etc/".length)}`,
    target,
    resolved: target,
    readOnly: false,
  }));
  const withVolumes = {
    ...plan,
    volumes: [...generated, ...args.volumes.map((spec) => prepareVolume(spec, plan.rootfs, undefined))],
  };
  const limited = hasLimits(args.limits)
    ? { ...withVolumes, cgroup: cgroupPreview(plan.id, args.limits) }
    : withVolumes;
  // The address is leased only by run: explain shows where it would go.
  const bridged: ContainerPlan = args.network === "bridge"
    ? {
      ...limited,
      bridge: {
        id: plan.id,
        nat: (await import("../net/bridge.ts")).natBackend(),
        lease: {
          containerId: plan.id,
          address: "<address>",
          cidr: "<address>/16",
          gateway: "10.88.0.1",
          pid: 0,
          startTime: 0,
        },
        prefixLength: 16,
        hostVeth: `veth${plan.id.slice(0, 8)}`,
        ports: args.publish,
      },
    }
    : limited;
  console.log(explain(containerSteps(bridged)));
  return 0;
}

/** The cgroup a run would make, as explain shows it: computed, nothing created. */
function cgroupPreview(id: string, limits: ResourceLimits): NonNullable<ContainerPlan["cgroup"]> {
  const preview = planContainerCgroup(id, limits);
  return { setup: preview.ops.map(showCgroupOp), procs: preview.dirs.map((dir) => `${dir}/cgroup.procs`) };
}
