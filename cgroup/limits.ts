/**
 * Resource limits as the command line gives them, parsed the way Docker
 * parses them: `--memory 64m`, `--cpus 0.5`, `--pids-limit 50`.
 *
 * @example
 * ```ts
 * parseMemory("64m"); // 67108864
 * parseCpus("0.5"); // 0.5
 * parsePidsLimit("-1"); // undefined: unlimited
 * ```
 *
 * @module
 */

/** The limits a container's cgroup enforces; an absent field is no limit. */
export interface ResourceLimits {
  /** Bytes of memory (swap included: the container gets no swap). */
  readonly memoryBytes?: number;
  /** CPUs' worth of time per period, e.g. 0.5 for half of one CPU. */
  readonly cpus?: number;
  /** Most processes and threads the container may have at once. */
  readonly pidsLimit?: number;
}

/** A limit the user wrote that gcr cannot use; the CLI prints the message on one line. */
export class InvalidLimitError extends Error {
  override name = "InvalidLimitError";
}

/** Docker's minimum for `--memory` (a smaller cgroup cannot even start most programs). */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * A memory size as Docker reads it: a number of bytes, or a number with a
 * binary unit `b`, `k`, `m`, `g`, `t`, `p` (any case, optionally followed by
 * `b` or `ib`: `64m`, `64MB`, `1.5g`, `512KiB`).
 */
export function parseMemory(text: string, option = "--memory"): number {
  const match = text.trim().match(/^(\d+(?:\.\d+)?) ?([kmgtp])?(?:i?b)?$/i);
  if (!match) {
    throw new InvalidLimitError(
      `invalid ${option} ${JSON.stringify(text)}: expected a size such as 64m, 1g, 512k or a number of bytes`,
    );
  }
  const bytes = Math.floor(Number(match[1]) * UNITS[(match[2] ?? "").toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) throw new InvalidLimitError(`invalid ${option} ${JSON.stringify(text)}: too large`);
  if (bytes < MIN_MEMORY_BYTES) {
    throw new InvalidLimitError(
      `invalid ${option} ${JSON.stringify(text)}: the minimum is 6m (${MIN_MEMORY_BYTES} bytes)`,
    );
  }
  return bytes;
}

/**
 * A number of CPUs, fractional: `0.5` is half of one CPU's time. As Docker,
 * between 0.01 and the number of CPUs of the host (`available`).
 */
export function parseCpus(text: string, available = navigator.hardwareConcurrency): number {
  const cpus = /^\d*\.?\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isFinite(cpus)) {
    throw new InvalidLimitError(`invalid --cpus ${JSON.stringify(text)}: expected a number of CPUs such as 0.5 or 2`);
  }
  if (cpus < 0.01 || cpus > available) {
    throw new InvalidLimitError(
      `invalid --cpus ${JSON.stringify(text)}: the range is 0.01 to ${available}, as there are ${available} CPUs`,
    );
  }
  return cpus;
}

/**
 * A process limit: a positive integer; `0` or `-1` mean unlimited (as
 * Docker), returned as undefined.
 */
export function parsePidsLimit(text: string): number | undefined {
  const limit = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(limit) || limit < -1) {
    throw new InvalidLimitError(
      `invalid --pids-limit ${JSON.stringify(text)}: expected a whole number of processes (-1 for unlimited)`,
    );
  }
  return limit > 0 ? limit : undefined;
}
