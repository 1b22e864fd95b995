/**
 * A small IPv4 address allocator for the bridge network: one address per
 * container, never the same address twice while its owner lives.
 *
 * State lives under a folder the caller gives (gcr's state dir): for subnet
 * 10.88.0.0/16, `10.88.0.0_16.json` holds the leases and `10.88.0.0_16.lock`
 * is flock(2)ed around every read-modify-write, so concurrent `gcr run`s
 * (separate processes) serialize. Each lease records its owner's pid and
 * that process's start time (field 22 of /proc/<pid>/stat): a lease whose
 * owner is gone, or whose pid now belongs to a newer process, is stale and
 * its address is handed out again. The state file is replaced by rename, so
 * a crash mid-write leaves the old state, never half of one.
 *
 * ```ts
 * const ipam = new Ipam({ stateDir: "/run/gcr/net" });
 * const lease = ipam.allocate(containerId);   // { address: "10.88.0.2", cidr: "10.88.0.2/16", gateway: "10.88.0.1", … }
 * …
 * ipam.release(containerId);
 * ```
 *
 * @module
 */
import { AT_FDCWD, LOCK_EX, O, O_CLOEXEC } from "../ffi/constants.ts";
import { check } from "../ffi/errno.ts";
import { libc } from "../ffi/libc.ts";
import { processStart } from "../host/processes.ts";
import { parseIpv4, parseIpv4Cidr } from "./links.ts";
import type { Lease } from "../steps/plan.ts";

/** The default bridge subnet; the gateway (the bridge's address) is its first host. */
export const DEFAULT_SUBNET = "10.88.0.0/16";

export interface IpamOptions {
  /** Folder for the lock and state files; created if missing. */
  stateDir: string;
  /** `a.b.c.d/n` with no host bits set. Default 10.88.0.0/16. */
  subnet?: string;
}

interface StoredLease {
  address: string;
  pid: number;
  startTime: number;
}

interface State {
  subnet: string;
  leases: Record<string, StoredLease>;
}

function toNumber(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

function toText(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

function isLive(lease: StoredLease): boolean {
  return processStart(lease.pid) === String(lease.startTime);
}

/** Allocates addresses of one subnet; each call takes the lock, reads, changes and writes the state. */
export class Ipam {
  readonly subnet: string;
  readonly prefixLength: number;
  readonly gateway: string;
  readonly #network: number;
  readonly #broadcast: number;
  readonly #statePath: string;
  readonly #lockPath: string;

  constructor(options: IpamOptions) {
    this.subnet = options.subnet ?? DEFAULT_SUBNET;
    const { address, prefixLength } = parseIpv4Cidr(this.subnet);
    if (prefixLength > 30) throw new Error(`Subnet ${this.subnet} is too small: /30 at most (gateway and one address)`);
    const mask = prefixLength === 0 ? 0 : (~0 << (32 - prefixLength)) >>> 0;
    this.#network = toNumber(address);
    if ((this.#network & mask) >>> 0 !== this.#network) {
      throw new Error(
        `Subnet ${this.subnet} has host bits set: use ${toText((this.#network & mask) >>> 0)}/${prefixLength}`,
      );
    }
    this.prefixLength = prefixLength;
    this.#broadcast = (this.#network | ~mask) >>> 0;
    this.gateway = toText(this.#network + 1);
    Deno.mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
    const base = `${options.stateDir.replace(/\/+$/, "")}/${this.subnet.replace("/", "_")}`;
    this.#statePath = `${base}.json`;
    this.#lockPath = `${base}.lock`;
  }

  /**
   * An address for `containerId`, owned by process `pid` (default: this
   * one). Asking again for a container that holds a live lease returns that
   * lease. Throws when every address is held by a live owner.
   */
  allocate(containerId: string, pid: number = Deno.pid): Lease {
    if (!containerId) throw new Error("A container id is needed to allocate an address");
    const start = processStart(pid);
    if (start === undefined) throw new Error(`Cannot allocate an address for process ${pid}: it does not exist`);
    return this.#locked((state) => {
      const held = state.leases[containerId];
      if (held && isLive(held)) return this.#lease(containerId, held);
      const used = new Set<number>();
      for (const [id, lease] of Object.entries(state.leases)) {
        if (id !== containerId && isLive(lease)) used.add(toNumber(parseIpv4(lease.address)));
        else delete state.leases[id]; // stale: its owner is gone
      }
      // .0 is the network, .1 the gateway, the last one broadcast.
      for (let candidate = this.#network + 2; candidate < this.#broadcast; candidate++) {
        if (used.has(candidate)) continue;
        const lease = { address: toText(candidate), pid, startTime: Number(start) };
        state.leases[containerId] = lease;
        return this.#lease(containerId, lease);
      }
      throw new Error(`No free address in ${this.subnet}: all ${used.size} are in use`);
    });
  }

  /** Frees `containerId`'s address; false when it held none. */
  release(containerId: string): boolean {
    return this.#locked((state) => {
      if (!(containerId in state.leases)) return false;
      delete state.leases[containerId];
      return true;
    });
  }

  /** The leases whose owners are alive. */
  leases(): Lease[] {
    return this.#locked((state) =>
      Object.entries(state.leases).filter(([, lease]) => isLive(lease)).map(([id, lease]) => this.#lease(id, lease))
    );
  }

  #lease(containerId: string, stored: StoredLease): Lease {
    return {
      containerId,
      address: stored.address,
      cidr: `${stored.address}/${this.prefixLength}`,
      gateway: this.gateway,
      pid: stored.pid,
      startTime: stored.startTime,
    };
  }

  /**
   * Runs `change` on the state with the lock held and writes the state back.
   * flock blocks the JS thread while another process holds the lock: each
   * holder only reads and writes one small file.
   */
  #locked<T>(change: (state: State) => T): T {
    const c = libc();
    const fd = check(
      c.openat(AT_FDCWD, new TextEncoder().encode(this.#lockPath + "\0"), O.WRONLY | O.CREAT | O_CLOEXEC, 0o600),
      `open(${JSON.stringify(this.#lockPath)})`,
    );
    try {
      check(c.flock(fd, LOCK_EX), `flock(${JSON.stringify(this.#lockPath)}, LOCK_EX)`);
      const state = this.#read();
      const before = JSON.stringify(state);
      const result = change(state);
      const after = JSON.stringify(state, null, 2);
      if (JSON.stringify(state) !== before) {
        const temporary = `${this.#statePath}.${Deno.pid}.tmp`;
        Deno.writeTextFileSync(temporary, after + "\n", { mode: 0o600 });
        Deno.renameSync(temporary, this.#statePath);
      }
      return result;
    } finally {
      c.close(fd); // releases the lock
    }
  }

  #read(): State {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.#statePath);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return { subnet: this.subnet, leases: {} };
      throw error;
    }
    const state = JSON.parse(text) as State;
    if (state.subnet !== this.subnet || typeof state.leases !== "object" || state.leases === null) {
      throw new Error(`${this.#statePath} is not an address state for ${this.subnet}`);
    }
    return state;
  }
}
