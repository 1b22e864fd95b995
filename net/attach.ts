/**
 * A container's place on the gcr0 bridge, from gcr's side: the address it
 * leases before the clone (so /etc/hosts can name it) and what undoes
 * connect-bridge when it ends, or when gcr rm finds it left behind. The
 * network modules load only when a container uses the bridge.
 *
 * @module
 */
import type { FoundContainer } from "../state/containers.ts";
import { runtimeDir } from "../state/paths.ts";
import { sameProcess } from "../state/processes.ts";
import { type BridgeAttachment, type PortMapping } from "../steps/plan.ts";

/**
 * The container's place on the gcr0 bridge: an address leased for as long as
 * `owner` lives (the gcr that waits for the container: this one, or a
 * detached container's gcr-monitor). The allocator's folder has a dot name,
 * which no container id can have, so that gcr ps, rm and prune never take it
 * for a container.
 */
export async function attachToBridge(
  id: string,
  ports: readonly PortMapping[],
  owner = Deno.pid,
): Promise<BridgeAttachment> {
  const { Ipam } = await import("./ipam.ts");
  const ipam = new Ipam({ stateDir: `${runtimeDir()}/.network` });
  const { natBackend } = await import("./bridge.ts");
  const nat = natBackend();
  return {
    id,
    nat,
    lease: ipam.allocate(id, owner),
    prefixLength: ipam.prefixLength,
    hostVeth: `veth${id.slice(0, 8)}`,
    ports,
  };
}

/** Undoes attachToBridge and what connect-bridge did; the bridge goes with the last container on it. */
export async function detachFromBridge(attachment: BridgeAttachment): Promise<void> {
  const [{ Ipam }, { disconnect }] = await Promise.all([import("./ipam.ts"), import("./bridge.ts")]);
  const ipam = new Ipam({ stateDir: `${runtimeDir()}/.network` });
  ipam.release(attachment.id);
  disconnect(attachment, ipam.leases().length);
}

/**
 * A bridged container whose gcr died without undoing its network (killed
 * with SIGKILL): its NAT table and address are released here. Its veth went
 * with its network namespace.
 */
export async function releaseNetwork(found: FoundContainer): Promise<void> {
  const network = found.record?.network;
  if (!network || sameProcess(found.record!.pid, found.record!.pidStart)) return;
  try {
    await detachFromBridge(network);
  } catch (error) {
    console.error(`gcr: ${(error as Error).message}`);
  }
}
