/**
 * One of several concurrent allocators for tests/net/ipam_test.ts: allocates
 * COUNT addresses in STATE_DIR for ids `PREFIX-0` … owned by OWNER_PID, each
 * allocation its own lock cycle, and prints them as JSON.
 *
 *   deno run -A ipam_script.ts STATE_DIR PREFIX COUNT OWNER_PID [SUBNET]
 */
import { Ipam } from "../../net/ipam.ts";

const [stateDir, prefix, count, owner, subnet] = Deno.args;
const ipam = new Ipam({ stateDir: stateDir!, ...(subnet ? { subnet } : {}) });
const addresses: Record<string, string> = {};
for (let i = 0; i < Number(count); i++) {
  const id = `${prefix}-${i}`;
  addresses[id] = ipam.allocate(id, Number(owner)).address;
}
console.log(JSON.stringify(addresses));
