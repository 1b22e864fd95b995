/**
 * A streaming tar reader for image layers: ustar, GNU (long names and links,
 * base-256 numbers) and PAX (`x` and `g` headers, `SCHILY.xattr.*`), reading
 * a web stream chunk by chunk so no layer is ever held in memory whole.
 *
 * Why not an npm package: the two candidates, tar-stream 3.2.2
 * (`headers.js` `decodePax`) and modern-tar 0.8.6 (`parsePax`), both decode
 * PAX values as UTF-8 text. A `security.capability` value is binary: for
 * `cap_setuid` or `cap_setfcap` it holds a 0x80 byte, which both turn into
 * U+FFFD (measured: `…010000800000…` came back as `…010000efbfbd00…`), so a
 * capability would be silently corrupted. Both also decode names as UTF-8,
 * which is lossy for names that are not. Tar is small enough to read
 * directly, and keeping the parser beside the containment code keeps every
 * byte the applier trusts in one auditable place.
 *
 * Names and link targets are byte strings: one UTF-16 code unit per byte
 * (0-255), so any name round-trips to the exact bytes of the archive, and
 * `/`, `.` and `.wh.` compare as they do in ASCII. Use {@link displayName} to
 * show one to a person.
 *
 * @example
 * ```ts
 * const reader = new TarReader(stream);
 * for (let entry; (entry = await reader.next());) {
 *   if (entry.type === "file") await reader.readBody((chunk) => sink(chunk));
 * }
 * ```
 *
 * @module
 */
import { type ByteString, byteString } from "../ffi/byte_string.ts";

export type TarEntryType =
  | "file"
  | "directory"
  | "symlink"
  | "hardlink"
  | "fifo"
  | "char-device"
  | "block-device"
  | "other";

/** One archive member, with every PAX and GNU extension already applied. */
export interface TarEntry {
  name: ByteString;
  type: TarEntryType;
  /** The raw typeflag character, for messages about "other" entries. */
  typeflag: string;
  /** Permission bits including setuid, setgid and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time: whole seconds and nanoseconds (PAX keeps fractions). */
  mtime: { sec: number; nsec: number };
  /** Symlink target or hard link name; "" otherwise. */
  linkName: ByteString;
  devMajor: number;
  devMinor: number;
  /** Extended attributes, name (byte string) to raw value. */
  xattrs: Map<ByteString, Uint8Array>;
}

const BLOCK = 512;
/** PAX and GNU long-name members are read whole; cap them (xattrs are at most 64 KiB each). */
const MAX_META_SIZE = 16 * 1024 * 1024;

/** Reads tar members from a stream of bytes, one at a time. */
export class TarReader {
  readonly #source: ReadableStreamDefaultReader<Uint8Array>;
  #chunks: Uint8Array[] = [];
  /** Offset into #chunks[0] of the first unread byte. */
  #head = 0;
  #available = 0;
  #ended = false;
  /** Absolute offset of the next unread byte, for messages. */
  #offset = 0;
  /** Body bytes and padding of the current entry still unread. */
  #bodyLeft = 0;
  #paddingLeft = 0;
  #globals = new Map<string, Uint8Array>();
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#source = stream.getReader();
  }

  /** The next member, or undefined at the end of the archive. Skips what is left of the previous body. */
  async next(): Promise<TarEntry | undefined> {
    if (this.#done) return undefined;
    await this.#skip(this.#bodyLeft + this.#paddingLeft);
    this.#bodyLeft = this.#paddingLeft = 0;
    let pax = new Map<string, Uint8Array>();
    let longName: ByteString | undefined;
    let longLink: ByteString | undefined;
    for (;;) {
      const at = this.#offset;
      if (!(await this.#fill(BLOCK))) {
        // No end-of-archive blocks: accepted, as GNU tar does, unless a
        // header announced a member that never came.
        if (this.#available > 0) {
          throw new Error(
            at === 0
              ? `not a tar archive: only ${this.#available} bytes, less than one header`
              : `tar archive is truncated at byte ${at}`,
          );
        }
        if (pax.size || longName !== undefined || longLink !== undefined) {
          throw new Error(`tar archive ends after an extended header at byte ${at}`);
        }
        return this.#finish();
      }
      const block = this.#take(BLOCK);
      if (isZero(block)) return this.#finish();
      const header = parseHeader(block, at);
      const flag = header.typeflag;
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        if (header.size > MAX_META_SIZE) {
          throw new Error(`tar extended header at byte ${at} is too large (${header.size} bytes)`);
        }
        const data = await this.#readAll(header.size);
        if (flag === "x") pax = new Map([...pax, ...parsePax(data, at)]);
        else if (flag === "g") this.#globals = new Map([...this.#globals, ...parsePax(data, at)]);
        else if (flag === "L") longName = nulTerminated(data);
        else longLink = nulTerminated(data);
        continue;
      }
      const records = new Map([...this.#globals, ...pax]);
      const entry = applyExtensions(header, records, longName, longLink, at);
      // Hard links, symlinks, devices, FIFOs and directories carry no data
      // even when a size is set (POSIX); regular and unknown members do.
      const hasData = entry.type === "file" || entry.type === "other";
      this.#bodyLeft = hasData ? entry.size : 0;
      this.#paddingLeft = hasData ? -entry.size & (BLOCK - 1) : 0;
      return entry;
    }
  }

  /** Feeds the current member's data to `sink` chunk by chunk; the chunks are only valid during the call. */
  async readBody(sink: (chunk: Uint8Array) => void): Promise<void> {
    while (this.#bodyLeft > 0) {
      if (this.#available === 0 && !(await this.#pull())) {
        throw new Error(`tar archive is truncated at byte ${this.#offset} (inside a member's data)`);
      }
      const chunk = this.#chunks[0]!;
      const n = Math.min(this.#bodyLeft, chunk.length - this.#head);
      const piece = chunk.subarray(this.#head, this.#head + n);
      this.#advance(n);
      this.#bodyLeft -= n;
      sink(piece);
    }
  }

  /** Stops reading; the source stream is cancelled. */
  async cancel(reason?: unknown): Promise<void> {
    this.#done = true;
    await this.#source.cancel(reason).catch(() => {});
  }

  /**
   * Reads the source to its end, so that a digest check upstream of this
   * stream sees every byte (and fails here if it fails).
   */
  async #finish(): Promise<undefined> {
    this.#done = true;
    this.#chunks = [];
    this.#available = 0;
    while (!(await this.#source.read()).done) { /* trailing padding */ }
    return undefined;
  }

  async #pull(): Promise<boolean> {
    if (this.#ended) return false;
    for (;;) {
      const { done, value } = await this.#source.read();
      if (done) {
        this.#ended = true;
        return false;
      }
      if (value.length === 0) continue;
      this.#chunks.push(value);
      this.#available += value.length;
      return true;
    }
  }

  /** Ensures `n` bytes are buffered; false if the stream ends first. */
  async #fill(n: number): Promise<boolean> {
    while (this.#available < n) if (!(await this.#pull())) return false;
    return true;
  }

  #advance(n: number): void {
    this.#available -= n;
    this.#offset += n;
    this.#head += n;
    while (this.#chunks.length && this.#head >= this.#chunks[0]!.length) {
      this.#head -= this.#chunks[0]!.length;
      this.#chunks.shift();
    }
  }

  /** `n` buffered bytes (a view when they lie in one chunk, else a copy). */
  #take(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length - this.#head >= n) {
      const view = first.subarray(this.#head, this.#head + n);
      this.#advance(n);
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const piece = chunk.subarray(this.#head, this.#head + Math.min(n - filled, chunk.length - this.#head));
      out.set(piece, filled);
      filled += piece.length;
      this.#advance(piece.length);
    }
    return out;
  }

  async #readAll(size: number): Promise<Uint8Array> {
    const padded = size + (-size & (BLOCK - 1));
    if (!(await this.#fill(padded))) throw new Error(`tar archive is truncated at byte ${this.#offset}`);
    return this.#take(padded).slice(0, size);
  }

  async #skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.#available === 0 && !(await this.#pull())) {
        throw new Error(`tar archive is truncated at byte ${this.#offset}`);
      }
      const step = Math.min(n, this.#available);
      this.#advance(step);
      n -= step;
    }
  }
}

interface RawHeader {
  name: ByteString;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkName: ByteString;
  devMajor: number;
  devMinor: number;
}

function parseHeader(block: Uint8Array, at: number): RawHeader {
  verifyChecksum(block, at);
  const magic = byteString(block.subarray(257, 263));
  let name = nulTerminated(block.subarray(0, 100));
  // POSIX ustar splits long names into prefix/name; the old GNU format
  // ("ustar  \0") keeps other fields at offset 345, so only ustar has one.
  if (magic === "ustar\0") {
    const prefix = nulTerminated(block.subarray(345, 500));
    if (prefix) name = `${prefix}/${name}`;
  }
  const field = (offset: number, length: number, what: string) =>
    parseNumber(block.subarray(offset, offset + length), `${what} of the header at byte ${at}`);
  return {
    name,
    typeflag: String.fromCharCode(block[156]!),
    mode: field(100, 8, "mode"),
    uid: field(108, 8, "uid"),
    gid: field(116, 8, "gid"),
    size: field(124, 12, "size"),
    mtime: field(136, 12, "mtime"),
    linkName: nulTerminated(block.subarray(157, 257)),
    devMajor: magic.startsWith("ustar") ? field(329, 8, "devmajor") : 0,
    devMinor: magic.startsWith("ustar") ? field(337, 8, "devminor") : 0,
  };
}

function verifyChecksum(block: Uint8Array, at: number): void {
  const stored = parseNumber(block.subarray(148, 156), `checksum of the header at byte ${at}`);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  // Some historic writers summed signed chars; tar accepts both.
  if (stored !== unsigned && stored !== signed) {
    throw new Error(`tar header at byte ${at} has a bad checksum: not a tar archive, or a corrupt one`);
  }
}

/** An octal field (space or NUL terminated), or GNU base-256 when the high bit is set. */
function parseNumber(field: Uint8Array, what: string): number {
  const first = field[0] ?? 0;
  if (first & 0x80) {
    // Base-256, two's complement: 0x80 marks positive, 0xff negative.
    let value = BigInt(first & 0x7f) - (first === 0xff ? 128n : 0n);
    for (let i = 1; i < field.length; i++) value = (value << 8n) | BigInt(field[i]!);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Error(`${what} is out of range`);
    }
    return Number(value);
  }
  let value = 0;
  let i = 0;
  while (i < field.length && (field[i] === 0x20 || field[i] === 0)) i++;
  for (; i < field.length; i++) {
    const c = field[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw new Error(`${what} is not an octal number`);
    value = value * 8 + (c - 0x30);
  }
  return value;
}

/** Bytes up to the first NUL, as a byte string. */
function nulTerminated(bytes: Uint8Array): ByteString {
  const end = bytes.indexOf(0);
  return byteString(end === -1 ? bytes : bytes.subarray(0, end));
}

/** PAX records: `"<length> <key>=<value>\n"`, values kept as raw bytes. */
function parsePax(data: Uint8Array, at: number): Map<string, Uint8Array> {
  const records = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // NUL padding written by some tools
    const space = data.indexOf(0x20, pos);
    const length = space === -1 ? NaN : Number(byteString(data.subarray(pos, space)));
    if (!Number.isInteger(length) || length <= 0 || pos + length > data.length || data[pos + length - 1] !== 0x0a) {
      throw new Error(`malformed PAX record in the extended header at byte ${at}`);
    }
    const record = data.subarray(space + 1, pos + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals <= 0) throw new Error(`malformed PAX record in the extended header at byte ${at}`);
    records.set(byteString(record.subarray(0, equals)), record.slice(equals + 1));
    pos += length;
  }
  return records;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file", // contiguous file: a regular file everywhere that matters
  "1": "hardlink",
  "2": "symlink",
  "3": "char-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
};

function applyExtensions(
  header: RawHeader,
  pax: Map<string, Uint8Array>,
  longName: ByteString | undefined,
  longLink: ByteString | undefined,
  at: number,
): TarEntry {
  let type = TYPES[header.typeflag] ?? "other";
  if (header.typeflag === "S" || [...pax.keys()].some((key) => key.startsWith("GNU.sparse."))) {
    throw new Error(`tar member at byte ${at} is a GNU sparse file, which image layers do not use: not supported`);
  }
  const text = (key: string) => {
    const value = pax.get(key);
    return value && value.length ? byteString(value) : undefined;
  };
  const integer = (key: string, fallback: number) => {
    const value = text(key);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
      throw new Error(`PAX ${key}=${JSON.stringify(value)} at byte ${at} is not a valid number`);
    }
    return Number(value);
  };
  let name = text("path") ?? longName ?? header.name;
  // Pre-POSIX archives mark directories with a trailing slash on a file.
  if (type === "file" && header.typeflag !== "7" && name.endsWith("/")) type = "directory";
  const mtime = parseTime(text("mtime"), header.mtime, at);
  const xattrs = new Map<ByteString, Uint8Array>();
  for (const [key, value] of pax) {
    if (key.startsWith("LIBARCHIVE.xattr.")) {
      // bsdtar: URL-encoded name, base64 value; SCHILY.xattr wins if both.
      const xattrName = byteString(percentDecode(key.slice("LIBARCHIVE.xattr.".length)));
      const decoded = Uint8Array.from(atob(byteString(value)), (c) => c.charCodeAt(0));
      if (!xattrs.has(xattrName)) xattrs.set(xattrName, decoded);
    }
  }
  for (const [key, value] of pax) {
    if (key.startsWith("SCHILY.xattr.")) xattrs.set(key.slice("SCHILY.xattr.".length), value);
  }
  if (name.includes("\0")) throw new Error(`tar member at byte ${at} has a NUL byte in its name`);
  name = name.length ? name : ".";
  return {
    name,
    type,
    typeflag: header.typeflag,
    mode: header.mode & 0o7777,
    uid: integer("uid", header.uid),
    gid: integer("gid", header.gid),
    size: integer("size", header.size),
    mtime,
    linkName: text("linkpath") ?? longLink ?? header.linkName,
    devMajor: integer("SCHILY.devmajor", header.devMajor),
    devMinor: integer("SCHILY.devminor", header.devMinor),
    xattrs,
  };
}

/** A PAX time (`1700000000.123456789`, possibly negative) or the header's whole seconds. */
function parseTime(value: string | undefined, fallback: number, at: number): { sec: number; nsec: number } {
  if (value === undefined) return { sec: fallback, nsec: 0 };
  const match = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value);
  if (!match) throw new Error(`PAX mtime=${JSON.stringify(value)} at byte ${at} is not a valid time`);
  const sign = match[1] ? -1 : 1;
  const whole = Number(match[2]);
  const nsec = Number(((match[3] ?? "") + "000000000").slice(0, 9));
  if (sign > 0 || nsec === 0) return { sec: sign * whole, nsec };
  // -1.25 is 1.25 s before the epoch: seconds -2, nanoseconds 750000000.
  return { sec: -whole - 1, nsec: 1_000_000_000 - nsec };
}

function percentDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "%" && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(text.charCodeAt(i) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

function isZero(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}
