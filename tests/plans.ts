/** A container plan for unit tests: nothing here touches the system. */
import { type ContainerPlan, singleSet } from "../steps/plan.ts";
import type { IdMapping } from "../steps/step.ts";

const ROOTLESS: readonly IdMapping[] = [{ inside: 0, outside: 1000, count: 1 }];
const ROOT: readonly IdMapping[] = [{ inside: 0, outside: 0, count: 65536 }];

/** A rootless single-id plan (setgroups denied) unless `root` is set; `overrides` replace fields. */
export function testPlan(overrides: Partial<ContainerPlan> = {}, root = false): ContainerPlan {
  const map = root ? ROOT : ROOTLESS;
  return {
    id: "0123456789ab",
    hostname: "0123456789ab",
    rootfs: "/r",
    root: "/s/containers/0123456789ab/merged",
    overlay: { upper: "/s/containers/0123456789ab/upper", work: "/s/containers/0123456789ab/work" },
    volumes: [],
    argv: ["sh"],
    env: ["PATH=/bin"],
    workdir: "/",
    ids: { uid: map, gid: map, via: "direct", setgroups: root ? "allow" : "deny", writer: root ? "root" : "user" },
    network: "none",
    security: { capabilities: singleSet([0, 1]), noNewPrivs: true, maskPaths: true },
    ...overrides,
  };
}
