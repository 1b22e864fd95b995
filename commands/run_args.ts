/**
 * `gcr run`'s command line: options end at the image, as with docker run.
 *
 * @module
 */

import { parsePublish } from "../net/publish.ts";
import { parseDns } from "../plan/etc_files.ts";
import type { RunArgs } from "../plan/run_plan.ts";
import { CONTAINER_ID } from "../state/paths.ts";
import { envOption, scanOptions, workdirOption } from "./flags.ts";
import { UsageError } from "./usage.ts";
import { parseCpus, parseMemory, parsePidsLimit } from "../cgroup/limits.ts";

/**
 * Parses `run`'s arguments. Options end at the image, as with docker run: the
 * command's own options pass through untouched (see scanOptions).
 */
export function parseRunArgs(args: readonly string[]): RunArgs {
  const limits: { memoryBytes?: number; cpus?: number; pidsLimit?: number } = {};
  const parsed: Omit<RunArgs, "image" | "command" | "limits"> = {
    volumes: [],
    remove: false,
    rootfsCopy: false,
    init: false,
    limitsOptional: false,
    dns: [],
    publish: [],
    detach: false,
    capAdd: [],
    capDrop: [],
    noNewPrivs: true,
    mode: "run",
    quiet: false,
    env: [],
    workdir: "/",
    network: "none",
  };
  const i = scanOptions(args, "", (name, typed, value) => {
    switch (name) {
      case "e":
      case "env": {
        const entry = envOption(value());
        if (entry !== undefined) parsed.env.push(entry);
        break;
      }
      case "w":
      case "workdir":
        parsed.workdir = workdirOption(value());
        break;
      case "hostname": {
        const host = value();
        if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(host)) {
          throw new UsageError(`invalid hostname ${JSON.stringify(host)}`);
        }
        parsed.hostname = host;
        break;
      }
      case "net":
      case "network": {
        const net = value();
        if (net !== "none" && net !== "host" && net !== "bridge") {
          throw new UsageError(`unsupported network ${JSON.stringify(net)} (supported: none, host, bridge)`);
        }
        parsed.network = net;
        break;
      }
      case "p":
      case "publish":
        try {
          parsed.publish.push(parsePublish(value()));
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        break;
      case "rootfs-dir":
        parsed.rootfsDir = value();
        break;
      case "m":
      case "memory":
        limits.memoryBytes = parseMemory(value(), typed);
        break;
      case "cpus":
        limits.cpus = parseCpus(value());
        break;
      case "pids-limit": {
        const pids = parsePidsLimit(value());
        if (pids === undefined) delete limits.pidsLimit;
        else limits.pidsLimit = pids;
        break;
      }
      case "cap-add":
        parsed.capAdd.push(...value().split(","));
        break;
      case "cap-drop":
        parsed.capDrop.push(...value().split(","));
        break;
      case "security-opt": {
        const option = value();
        const [key, setting] = option.split(/[=:](.*)/s) as [string, string | undefined];
        if (key === "seccomp" && setting) parsed.seccomp = setting;
        else if (key === "no-new-privileges" && (setting === undefined || /^(true|false)$/.test(setting))) {
          parsed.noNewPrivs = setting !== "false";
        } else {
          throw new UsageError(
            `unsupported --security-opt ${
              JSON.stringify(option)
            } (supported: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false])`,
          );
        }
        break;
      }
      case "u":
      case "user":
        parsed.user = value();
        break;
      case "v":
      case "volume":
        parsed.volumes.push(value());
        break;
      case "rm":
        parsed.remove = true;
        break;
      case "name": {
        const wanted = value();
        if (!CONTAINER_ID.test(wanted)) {
          throw new UsageError(
            `invalid container name ${
              JSON.stringify(wanted)
            }: letters, digits and _.+- only, not starting with one of _.+-`,
          );
        }
        parsed.name = wanted;
        break;
      }
      case "d":
      case "detach":
        parsed.detach = true;
        break;
      // gcr run shares its own terminal with the container (the container's
      // process group gets its foreground): -i and -t are what it does anyway.
      case "i":
      case "interactive":
      case "t":
      case "tty":
        break;
      case "rootfs-copy":
        parsed.rootfsCopy = true;
        break;
      case "init":
        parsed.init = true;
        break;
      case "limits-optional":
        parsed.limitsOptional = true;
        break;
      case "dns":
        try {
          parsed.dns.push(parseDns(value()));
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        break;
      case "trace":
        parsed.mode = "trace";
        break;
      case "step":
        parsed.mode = "step";
        break;
      case "q":
      case "quiet":
        parsed.quiet = true;
        break;
      default:
        throw new UsageError(`unknown option ${typed}`);
    }
  });
  if (parsed.publish.length && parsed.network !== "bridge") {
    throw new UsageError("-p publishes ports of a bridged container: add --net bridge");
  }
  const image = args[i];
  if (image === undefined) throw new UsageError("missing <image>");
  const command = args.slice(i + 1);
  return { ...parsed, image, command: command.length ? command : ["sh"], limits };
}
