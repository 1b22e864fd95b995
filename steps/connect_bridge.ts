import { type BridgeAttachment, showConnect } from "../net/bridge.ts";
import type { Step } from "./step.ts";

/**
 * `--net bridge`: gcr joins the child's new network namespace to the gcr0
 * bridge while the child waits at its gate (the veth's far end is created
 * straight in the child's namespace, by its pid); the child's next call
 * waits for it, so the command starts with its address and route in place.
 */
export function connectBridge(attachment: BridgeAttachment): Step {
  return {
    name: "connect-bridge",
    why: `eth0 with ${attachment.lease.cidr} on the ${"gcr0"} bridge, a default route through it, NAT` +
      (attachment.ports.length ? " and published ports" : ""),
    parent: [{ op: "connect-bridge", attachment, show: showConnect(attachment) }],
    child: [],
  };
}
