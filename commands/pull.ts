/**
 * `gcr pull` and `img2rootfs` (one parser for both command lines), and the
 * pull that `gcr run` makes when an image is missing. main.ts and
 * commands/img2rootfs.ts load this module only when one of them is asked for, so that
 * `gcr run`'s start-up does not pay for the registry client.
 *
 * Flags follow Go's flag package, as the Go original's `img2rootfs` does:
 * one or two dashes, `-flag value` or `-flag=value`, booleans alone or as
 * `-flag=true|false`.
 *
 * @module
 */
import { say } from "../output/log.ts";
import { rootfsDir } from "../image/rootfs.ts";
import { UsageError } from "./usage.ts";
import { createProgress } from "../image/progress.ts";
import { defaultCacheDir, defaultName, pullToRootfs, readRecord } from "../image/pull.ts";
import { formatReference, parseReference } from "../image/reference.ts";

export interface PullArgs {
  source?: string;
  output?: string;
  platform?: string;
  insecure: boolean;
  username?: string;
  passwordStdin: boolean;
  quiet: boolean;
  rootfsDir?: string;
  name?: string;
}

const VALUE_FLAGS = new Set(["platform", "username", "u", "rootfs-dir", "name"]);

const BOOLEAN_FLAGS = new Set(["insecure", "password-stdin", "q", "quiet"]);

/** img2rootfs's own: the Go original's -image and -output. */
const IMG2ROOTFS_FLAGS = new Set(["image", "output", "o"]);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * Parses the flags of `gcr pull` (`positional`: the source is an argument,
 * and flags may come on either side of it) or of `img2rootfs` (the source is
 * `-image`, the output `-output`; flags end at the first argument, as in Go).
 */
export function parsePullArgs(args: readonly string[], command: "pull" | "img2rootfs"): PullArgs {
  const parsed: PullArgs = { insecure: false, passwordStdin: false, quiet: false };
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (command === "img2rootfs") {
        positional.push(...args.slice(i));
        break;
      }
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const rawName = eq >= 0 ? arg.slice(0, eq) : arg;
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const name = rawName.replace(/^--?/, "");
    if (BOOLEAN_FLAGS.has(name)) {
      let on = true;
      if (inline !== undefined) {
        if (!/^(1|0|t|f|true|false|TRUE|FALSE|True|False)$/.test(inline)) {
          throw new UsageError(`invalid boolean value ${JSON.stringify(inline)} for ${rawName}`);
        }
        on = /^(1|t|true)$/i.test(inline);
      }
      if (name === "insecure") parsed.insecure = on;
      else if (name === "password-stdin") parsed.passwordStdin = on;
      else parsed.quiet = on;
      continue;
    }
    if (!VALUE_FLAGS.has(name) && !(command === "img2rootfs" && IMG2ROOTFS_FLAGS.has(name))) {
      throw new UsageError(`unknown option ${rawName}`);
    }
    let value = inline;
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new UsageError(`option ${rawName} needs a value`);
    }
    switch (name) {
      case "platform":
        parsed.platform = value;
        break;
      case "u":
      case "username":
        parsed.username = value;
        break;
      case "rootfs-dir":
        parsed.rootfsDir = value;
        break;
      case "name":
        if (!NAME_RE.test(value)) throw new UsageError(`invalid rootfs name ${JSON.stringify(value)}`);
        parsed.name = value;
        break;
      case "image":
        parsed.source = value;
        break;
      case "o":
      case "output":
        parsed.output = value;
        break;
    }
  }
  if (command === "pull") {
    if (positional.length === 0) {
      throw new UsageError("missing <source>: an image reference, docker-archive:PATH or oci:DIR[:TAG]");
    }
    if (positional.length > 1) throw new UsageError(`one source at a time (got: ${positional.join(" ")})`);
    parsed.source = positional[0]!;
  } else {
    if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
    if (parsed.source === undefined) throw new UsageError("missing -image");
    if (parsed.output === undefined && parsed.name === undefined) throw new UsageError("missing -output");
  }
  if (parsed.passwordStdin !== (parsed.username !== undefined)) {
    throw new UsageError(
      parsed.passwordStdin ? "--password-stdin needs --username" : "--username needs --password-stdin",
    );
  }
  if (parsed.output !== undefined && parsed.name !== undefined) {
    throw new UsageError("give -output or --name, not both");
  }
  return parsed;
}

async function readPassword(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of Deno.stdin.readable) chunks.push(chunk);
  const text = new TextDecoder().decode(await new Blob(chunks as Uint8Array<ArrayBuffer>[]).arrayBuffer());
  const password = text.replace(/\r?\n$/, "");
  if (password === "") throw new UsageError("--password-stdin: nothing on stdin");
  return password;
}

/** `gcr pull …` and `img2rootfs …`: pulls, prints the rootfs folder on stdout. */
export async function pullCommand(args: PullArgs): Promise<number> {
  const source = args.source!;
  let output = args.output;
  if (output === undefined) {
    const name = args.name ?? defaultName(source);
    output = `${rootfsDir(args.rootfsDir)}/${name}`;
  }
  const record = await pullToRootfs(source, output, {
    cacheDir: defaultCacheDir(),
    progress: createProgress(args.quiet ? "quiet" : "auto"),
    insecure: args.insecure,
    ...(args.platform !== undefined ? { platform: args.platform } : {}),
    ...(args.username !== undefined
      ? { credentials: { username: args.username, password: await readPassword() } }
      : {}),
  });
  if (!args.quiet) say(`${record.reference}: ${record.platform}, config ${record.configDigest}`);
  console.log(output.replace(/\/+$/, ""));
  return 0;
}

/**
 * The pull `gcr run` makes for an image that is not a folder: into
 * `<dir>/<default name>`. A folder of that name is used as it is when gcr
 * pulled it from the same reference, and never replaced when it holds
 * something else.
 */
export async function pullForRun(image: string, dir: string, quiet: boolean): Promise<string> {
  const name = defaultName(image);
  const output = `${dir}/${name}`;
  const wanted = formatReference(parseReference(image.replace(/^docker:\/\//, "")));
  let present = false;
  try {
    present = Deno.statSync(output).isDirectory;
  } catch { /* missing */ }
  if (present) {
    const record = await readRecord(output);
    if (record?.reference === wanted) return output;
    throw new Error(
      `${output} holds ${record ? record.reference : "an image gcr did not pull"}: pull ${wanted} with --name`,
    );
  }
  say(`gcr: pulling ${wanted} into ${output}`);
  await pullToRootfs(image, output, {
    cacheDir: defaultCacheDir(),
    progress: createProgress(quiet ? "quiet" : "auto"),
  });
  return output;
}
