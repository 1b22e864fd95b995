/**
 * Pull progress, shown as `docker pull` shows it. On a terminal every layer
 * has a line of its own, redrawn in place with ANSI cursor moves:
 *
 * ```
 * 3f4ca61aafcd: Downloading  12.3MB/45.6MB  5.1MB/s
 * 9c2d5b3e8a10: Download complete
 * ```
 *
 * Elsewhere (a log file, CI) each status change is one plain log line; in
 * quiet mode nothing is printed. The puller reports events; the renderers
 * decide what to show.
 *
 * ```ts
 * const progress = createProgress("auto");
 * progress.update("3f4ca61aafcd", "Downloading", 0, 45_600_000);
 * progress.finish();
 * ```
 *
 * @module
 */
import { timestamp } from "../output/log.ts";

/** Receives pull events. `id` is a layer's short digest (12 hex digits). */
export interface PullProgress {
  /** A line of its own, not tied to a layer: `Pulling from library/ubuntu`. */
  note(message: string): void;
  /**
   * A layer's state: `Waiting`, `Downloading`, `Verifying Checksum`,
   * `Download complete`, `Already exists`, `Retrying in 2s: …`, `Failed: …`;
   * bytes received so far and the total, when known.
   */
  update(id: string, status: string, current?: number, total?: number): void;
  /** Draws the final state; no more events follow. */
  finish(): void;
}

/** Where progress goes: `auto` is `terminal` when stderr is a terminal, else `plain`. */
export type ProgressMode = "auto" | "terminal" | "plain" | "quiet";

/** Writes text to stderr (the default sink of both renderers). */
function writeStderr(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/** Sizes as Docker prints them (go-units `HumanSize`): decimal units, three significant digits. */
export function humanSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${Number(value.toPrecision(3))}${units[unit]}`;
}

/** A short digest as Docker shows it: the first 12 hex digits. */
export function shortDigest(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);
}

/** Nothing at all (`-q`). */
export class QuietProgress implements PullProgress {
  note(): void {}
  update(): void {}
  finish(): void {}
}

/** Transfer rate over the last couple of seconds. */
class RateMeter {
  readonly #samples: [time: number, bytes: number][] = [];
  readonly #window: number;

  constructor(windowMs = 2_000) {
    this.#window = windowMs;
  }

  add(time: number, bytes: number): void {
    const last = this.#samples.at(-1);
    if (last !== undefined && bytes < last[1]) this.#samples.length = 0; // restarted from zero
    this.#samples.push([time, bytes]);
    while (this.#samples.length > 2 && this.#samples[1]![0] < time - this.#window) this.#samples.shift();
  }

  /** Bytes per second, or undefined before there is enough to tell. */
  rate(): number | undefined {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (first === undefined || last === undefined || last[0] - first[0] < 200) return undefined;
    return (last[1] - first[1]) / ((last[0] - first[0]) / 1000);
  }
}

interface LayerLine {
  status: string;
  current?: number | undefined;
  total?: number | undefined;
  meter: RateMeter;
  drawnAt: number;
}

/** Options of the renderers; a test passes its own `write`, `now` and `columns`. */
export interface RendererOptions {
  readonly write?: (text: string) => void;
  readonly now?: () => number;
  readonly columns?: () => number;
}

/** Redraws at most this often per layer while only bytes change. */
const REDRAW_INTERVAL_MS = 100;

/** One line per layer, redrawn in place, as `docker pull` on a terminal. */
export class TerminalProgress implements PullProgress {
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #columns: () => number;
  /** Every line printed, in order: a layer id, or null for a note. */
  readonly #lines: (string | null)[] = [];
  readonly #layers = new Map<string, LayerLine>();

  constructor(options: RendererOptions = {}) {
    this.#write = options.write ?? writeStderr;
    this.#now = options.now ?? performance.now.bind(performance);
    this.#columns = options.columns ?? (() => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return 80;
      }
    });
  }

  #text(id: string, line: LayerLine): string {
    let text = `${id}: ${line.status}`;
    if (line.status === "Downloading" && line.current !== undefined) {
      text += `  ${humanSize(line.current)}${line.total !== undefined ? `/${humanSize(line.total)}` : ""}`;
      const rate = line.meter.rate();
      if (rate !== undefined) text += `  ${humanSize(rate)}/s`;
    }
    // A line that wraps would throw off the cursor arithmetic.
    const width = Math.max(20, this.#columns() - 1);
    return text.length > width ? text.slice(0, width) : text;
  }

  #draw(id: string, line: LayerLine): void {
    line.drawnAt = this.#now();
    const up = this.#lines.length - this.#lines.lastIndexOf(id);
    // Up to the layer's line, clear it, write, and back down to the bottom.
    this.#write(`\x1b[${up}A\r\x1b[2K${this.#text(id, line)}\r\x1b[${up}B`);
  }

  note(message: string): void {
    this.#lines.push(null);
    this.#write(`${message}\n`);
  }

  update(id: string, status: string, current?: number, total?: number): void {
    const now = this.#now();
    let line = this.#layers.get(id);
    if (line === undefined) {
      line = { status, current, total, meter: new RateMeter(), drawnAt: now };
      this.#layers.set(id, line);
      this.#lines.push(id);
      if (current !== undefined) line.meter.add(now, current);
      this.#write(`${this.#text(id, line)}\n`);
      return;
    }
    const statusChanged = line.status !== status;
    line.status = status;
    if (statusChanged) line.meter = new RateMeter(); // a rate spans one state (a retry's wait is not slowness)
    if (current !== undefined) {
      line.current = current;
      line.meter.add(now, current);
    }
    if (total !== undefined) line.total = total;
    if (statusChanged || now - line.drawnAt >= REDRAW_INTERVAL_MS) this.#draw(id, line);
  }

  finish(): void {
    for (const [id, line] of this.#layers) this.#draw(id, line);
  }
}

/** One log line per status change, for logs and CI. */
export class PlainProgress implements PullProgress {
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #layers = new Map<string, { status: string; started?: number; total?: number | undefined }>();

  constructor(options: RendererOptions = {}) {
    this.#write = options.write ?? writeStderr;
    this.#now = options.now ?? performance.now.bind(performance);
  }

  #log(message: string): void {
    this.#write(`${timestamp()} ${message}\n`);
  }

  note(message: string): void {
    this.#log(message);
  }

  update(id: string, status: string, current?: number, total?: number): void {
    const layer = this.#layers.get(id) ?? { status: "" };
    this.#layers.set(id, layer);
    if (total !== undefined) layer.total = total;
    if (layer.status === status) return;
    layer.status = status;
    const size = layer.total !== undefined ? ` ${humanSize(layer.total)}` : "";
    switch (status) {
      case "Waiting":
      case "Verifying Checksum":
        return; // too chatty for a log
      case "Downloading":
        layer.started = this.#now();
        this.#log(
          `${id}: downloading${size}${current ? ` (resuming at ${humanSize(current)})` : ""}`,
        );
        return;
      case "Download complete": {
        const seconds = layer.started !== undefined ? (this.#now() - layer.started) / 1000 : undefined;
        const rate = seconds && layer.total !== undefined ? `, ${humanSize(layer.total / seconds)}/s` : "";
        this.#log(`${id}: done${size}${seconds !== undefined ? ` in ${seconds.toFixed(1)}s${rate}` : ""}`);
        return;
      }
      default:
        this.#log(`${id}: ${status.charAt(0).toLowerCase()}${status.slice(1)}`);
    }
  }

  finish(): void {}
}

/** The renderer for `mode`; `auto` picks by whether stderr is a terminal. */
export function createProgress(mode: ProgressMode = "auto", options: RendererOptions = {}): PullProgress {
  switch (mode) {
    case "quiet":
      return new QuietProgress();
    case "terminal":
      return new TerminalProgress(options);
    case "plain":
      return new PlainProgress(options);
    case "auto":
      return Deno.stderr.isTerminal() ? new TerminalProgress(options) : new PlainProgress(options);
  }
}
