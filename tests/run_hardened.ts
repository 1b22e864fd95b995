/**
 * Runs one container with the hardening steps spliced into gcr's pipeline,
 * for tests/hardening_test.ts: runSteps shares this process's stdio with the
 * container, so the test runs this script as a subprocess and reads its
 * output. Not a test itself; the steps are not yet in steps/pipeline.ts.
 *
 *   deno run -A tests/run_hardened.ts '{"rootfs": "/…/busybox", "argv": ["id"], "user": "1000"}'
 *
 * Exits with the container's status (128+N for signal N), 125 when a step
 * failed (its error on stderr).
 *
 * @module
 */
import { planIds } from "../id_maps.ts";
import { setQuiet } from "../log.ts";
import { runSteps, StepError } from "../runner.ts";
import { resolveCapabilities } from "../security/capabilities.ts";
import { seccompProgram } from "../security/seccomp.ts";
import { resolveUser } from "../security/user.ts";
import { dropCapabilities } from "../steps/drop_capabilities.ts";
import { installSeccomp } from "../steps/install_seccomp.ts";
import { maskPaths } from "../steps/mask_paths.ts";
import { noNewPrivs } from "../steps/no_new_privs.ts";
import { containerSteps } from "../steps/pipeline.ts";
import type { ContainerPlan } from "../steps/plan.ts";
import { readonlyPaths } from "../steps/readonly_paths.ts";
import { setUser } from "../steps/set_user.ts";
import type { Step } from "../steps/step.ts";

export interface HardenedRun {
  readonly rootfs: string;
  readonly argv: readonly string[];
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
  /** `--user` */
  readonly user?: string;
  /** `--security-opt seccomp=…`: a profile path or `unconfined`; default: gcr's profile. */
  readonly seccomp?: string;
  /** `false`: leave out no-new-privs (the control case of the set-uid test). */
  readonly noNewPrivs?: boolean;
  /** `false`: leave out mask-paths and readonly-paths (the control case of the masking test). */
  readonly masks?: boolean;
  readonly network?: "none" | "host";
  readonly trace?: boolean;
}

/** gcr's pipeline with the hardening steps where they belong. */
export function hardenedSteps(plan: ContainerPlan, options: HardenedRun): Step[] {
  const caps = resolveCapabilities(options.capAdd ?? [], options.capDrop ?? []);
  const user = options.user === undefined ? undefined : resolveUser(options.user, plan.rootfs);
  const filter = seccompProgram(options.seccomp, caps);
  const steps = containerSteps(plan);
  const at = (name: string) => {
    const index = steps.findIndex((step) => step.name === name);
    if (index < 0) throw new Error(`no step ${name} in the pipeline`);
    return index;
  };
  // Right after detach-old-root: on the container's own /proc and /sys,
  // while it still has CAP_SYS_ADMIN.
  if (options.masks !== false) steps.splice(at("detach-old-root") + 1, 0, maskPaths(), readonlyPaths());
  steps.splice(
    at("exec"),
    0,
    dropCapabilities(caps, user ? { userUid: user.uid } : {}),
    ...(user ? [setUser(user, plan.ids)] : []),
    ...(options.noNewPrivs === false ? [] : [noNewPrivs()]),
    ...(filter ? [installSeccomp(filter)] : []),
  );
  return steps;
}

if (import.meta.main) {
  const options = JSON.parse(Deno.args[0] ?? "{}") as HardenedRun;
  setQuiet(!options.trace);
  const plan: ContainerPlan = {
    id: "0123456789ab",
    hostname: "hardened",
    rootfs: options.rootfs,
    argv: options.argv,
    env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=hardened", "HOME=/root"],
    workdir: "/",
    ids: planIds(),
    network: options.network ?? "none",
  };
  try {
    const status = await runSteps(hardenedSteps(plan, options), options.trace ? "trace" : "run");
    Deno.exit("exited" in status ? status.exited : 128 + status.signaled);
  } catch (error) {
    console.error(`gcr: ${(error as Error).message}`);
    Deno.exit(error instanceof StepError ? error.exitCode : 125);
  }
}
