/**
 * `gcr explain run …`: the steps a run would take, with every call, and
 * nothing run or made (not even the busybox image).
 *
 * @module
 */
import { isPath, rootfsDir } from "../image/rootfs.ts";
import { etcFiles } from "../plan/etc_files.ts";
import { cgroupPreview, hasLimits, planFor } from "../plan/run_plan.ts";
import { prepareVolume } from "../plan/volumes.ts";
import { showChildCall, showParentOp } from "../runner/runner.ts";
import { containerPaths } from "../state/paths.ts";
import { containerSteps } from "../steps/pipeline.ts";
import type { ContainerPlan } from "../steps/plan.ts";
import type { Step } from "../steps/step.ts";
import { parseRunArgs } from "./run_args.ts";
import { UsageError } from "./usage.ts";

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

/** `gcr explain run <image> …` */
export async function explainCommand(rest: readonly string[]): Promise<number> {
  if (rest[0] !== "run") throw new UsageError("explain takes a run command: gcr explain run <image> …");
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
