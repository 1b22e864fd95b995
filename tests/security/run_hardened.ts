/**
 * Runs one container through gcr's pipeline with a given security plan, for
 * tests/security/hardening_test.ts: runSteps shares this process's stdio with the
 * container, so the test runs this script as a subprocess and reads its
 * output. It exists (rather than `gcr run`) for the control cases gcr's
 * command line does not offer, such as leaving out the masks. Not a test.
 *
 *   deno run -A tests/security/run_hardened.ts '{"rootfs": "/…/busybox", "argv": ["id"], "user": "1000"}'
 *
 * Exits with the container's status (128+N for signal N), 125 when a step
 * failed (its error on stderr).
 *
 * @module
 */
import { planIds } from "../../plan/id_maps.ts";
import { setQuiet } from "../../output/log.ts";
import { runSteps } from "../../runner/runner.ts";
import { StepError } from "../../runner/step_error.ts";
import { resolveCapabilities } from "../../security/capabilities.ts";
import { seccompProgram } from "../../security/seccomp/docker.ts";
import { resolveUser } from "../../security/user.ts";
import { containerSteps } from "../../steps/pipeline.ts";
import { type ContainerPlan, type SecurityPlan, singleSet } from "../../steps/plan.ts";

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

/** The security plan gcr's command line would make, with the test's control switches. */
export function securityPlan(rootfs: string, options: HardenedRun): SecurityPlan {
  const capabilities = resolveCapabilities(options.capAdd ?? [], options.capDrop ?? []);
  const user = options.user === undefined ? undefined : resolveUser(options.user, rootfs);
  const seccomp = seccompProgram(options.seccomp, capabilities);
  return {
    capabilities: singleSet(capabilities),
    noNewPrivs: options.noNewPrivs !== false,
    maskPaths: options.masks !== false,
    ...(user ? { user } : {}),
    ...(seccomp ? { seccomp } : {}),
  };
}

if (import.meta.main) {
  const options = JSON.parse(Deno.args[0] ?? "{}") as HardenedRun;
  setQuiet(!options.trace);
  try {
    const plan: ContainerPlan = {
      id: "0123456789ab",
      hostname: "hardened",
      rootfs: options.rootfs,
      // No overlay: the image folder itself is bound as the root (as
      // --rootfs-copy binds its copy); these runs do not write to it.
      root: options.rootfs,
      volumes: [],
      argv: options.argv,
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=hardened", "HOME=/root"],
      workdir: "/",
      ids: planIds(),
      network: options.network ?? "none",
      security: securityPlan(options.rootfs, options),
    };
    const status = await runSteps(containerSteps(plan), options.trace ? "trace" : "run");
    Deno.exit("exited" in status ? status.exited : 128 + status.signaled);
  } catch (error) {
    console.error(`gcr: ${(error as Error).message}`);
    Deno.exit(error instanceof StepError ? error.exitCode : 125);
  }
}
