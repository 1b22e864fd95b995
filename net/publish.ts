/**
 * `-p` for `--net bridge`, parsed on gcr's start-up path: kept apart from
 * bridge.ts, which brings the rtnetlink client with it.
 *
 * @module
 */
import type { PortMapping } from "../steps/plan.ts";

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** Parses `-p 8080:80`, `-p 127.0.0.1:8080:80/udp`. */
export function parsePublish(spec: string): PortMapping {
  const [ports, protocol = "tcp", ...extra] = spec.split("/");
  const parts = ports!.split(":");
  const port = (text: string | undefined) => {
    if (text === undefined || !/^\d{1,5}$/.test(text) || +text < 1 || +text > 65535) {
      throw new Error(`invalid -p ${JSON.stringify(spec)}: ports are 1-65535 (-p [HOST-IP:]HOST-PORT:CONTAINER-PORT)`);
    }
    return Number(text);
  };
  if (extra.length || (protocol !== "tcp" && protocol !== "udp") || parts.length < 2 || parts.length > 3) {
    throw new Error(`invalid -p ${JSON.stringify(spec)} (-p [HOST-IP:]HOST-PORT:CONTAINER-PORT[/tcp|/udp])`);
  }
  const hostIp = parts.length === 3 ? parts[0]! : undefined;
  if (hostIp !== undefined && !IPV4.test(hostIp)) {
    throw new Error(`invalid -p ${JSON.stringify(spec)}: ${JSON.stringify(hostIp)} is not an IPv4 address`);
  }
  return {
    ...(hostIp !== undefined ? { hostIp } : {}),
    hostPort: port(parts.at(-2)),
    containerPort: port(parts.at(-1)),
    protocol,
  };
}
