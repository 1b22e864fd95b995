import type { ContainerPlan } from "./plan.ts";
import { call, type Step } from "./step.ts";

/** Names the container inside its own UTS namespace, as the Go original does with the id. */
export function setHostname(plan: Pick<ContainerPlan, "hostname">): Step {
  const length = new TextEncoder().encode(plan.hostname).length;
  return {
    name: "set-hostname",
    why: "the new UTS namespace starts with the host's name; the container gets its own",
    parent: [],
    child: [call("sethostname", plan.hostname, length)],
  };
}
