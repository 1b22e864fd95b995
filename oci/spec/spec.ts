/**
 * Reads an OCI runtime-spec bundle's `config.json` (runtime-spec 1.0 to 1.2)
 * into typed, checked values that gcr's planner turns into its own plan.
 *
 * Every object is read against the fields the spec gives it; others are
 * ignored, as the spec requires. A field gcr cannot honour is refused with
 * a {@link SpecError} naming it, never dropped: a container that silently
 * lacks a limit its author asked for is worse than one that does not start.
 *
 * ```ts
 * const spec = readSpec("/var/lib/bundles/web");
 * spec.process.args; // ["nginx", "-g", "daemon off;"]
 * spec.mounts[0]?.flags; // MS.NOSUID | MS.NODEV | MS.NOEXEC
 * ```
 *
 * This module reads the top level (root, hostname, annotations, hooks) and
 * makes the checks between sections that no one section can make; each
 * section is read by its own module beside it (process.ts, mounts.ts,
 * linux.ts and the two linux.ts takes from: resources.ts and seccomp.ts;
 * hooks.ts),
 * all of them with fields.ts.
 *
 * @module
 */
import { resolvePath } from "../../host/files.ts";
import { asBoolean, asCString, asString, asStringMap, fail, Fields, list, type Shape, SpecError } from "./fields.ts";
import { asLinux, type NamespaceType, type OciLinux } from "./linux.ts";
import { asMount, type OciMount } from "./mounts.ts";
import { asProcess, type OciProcess } from "./process.ts";
import { asHooks, NO_HOOKS, type OciHooks } from "./hooks.ts";

import { isObject } from "../../host/json.ts";
export interface OciSpec {
  readonly ociVersion: string;
  /** The bundle folder, absolute. */
  readonly bundle: string;
  /** `path` is absolute: a relative one in config.json is relative to the bundle. */
  readonly root: { readonly path: string; readonly readonly: boolean };
  /** Absent: the spec leaves the UTS namespace's name alone. */
  readonly hostname?: string;
  readonly domainname?: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly process: OciProcess;
  /** In config.json's order, which is the order they must be mounted in. */
  readonly mounts: readonly OciMount[];
  readonly linux: OciLinux;
  /** What to run at each point of the container's life (oci/spec/hooks.ts). */
  readonly hooks: OciHooks;
}

const TOP: Shape = {
  ociVersion: "read",
  root: "read",
  mounts: "read",
  process: "read",
  hostname: "read",
  domainname: "read",
  annotations: "read",
  hooks: "read",
  linux: "read",
  solaris: "refuse",
  windows: "refuse",
  vm: "refuse",
  zos: "refuse",
  freebsd: "refuse",
};

/** Checks between fields, as runc's validator makes them, so they fail here rather than half-way through setup. */
function checkConsistency(spec: OciSpec): void {
  const namespace = (type: NamespaceType) => spec.linux.namespaces.find((ns) => ns.type === type);
  for (const field of ["hostname", "domainname"] as const) {
    if (spec[field] && !namespace("uts")) fail(field, "needs a uts namespace in linux.namespaces");
  }
  const user = namespace("user");
  for (const field of ["uidMappings", "gidMappings"] as const) {
    if (spec.linux[field].length && !user) fail(`linux.${field}`, "needs a user namespace in linux.namespaces");
    // A new user namespace without a map leaves every id as the overflow id, and root as nobody.
    if (user && !user.path && !spec.linux[field].length) {
      fail(`linux.${field}`, "is required with a new user namespace");
    }
  }
}

/**
 * Checks a parsed config.json and returns what it asks for. `bundle` is the
 * bundle folder, against which relative root and bind-mount paths resolve.
 * Throws a {@link SpecError} naming the first field gcr cannot take.
 */
export function parseSpec(json: unknown, bundle: string): OciSpec {
  if (!isObject(json)) throw new SpecError("", "config.json: must hold a JSON object");
  const top = new Fields(json, "", TOP);
  const base = resolvePath(bundle);
  const ociVersion = top.required("ociVersion", asString);
  if (!ociVersion.startsWith("1.")) {
    fail("ociVersion", `must be a 1.x runtime-spec version, not ${JSON.stringify(ociVersion)}`);
  }
  const root = top.required("root", (value, path) => {
    const fields = new Fields(value, path, { path: "read", readonly: "read" });
    const rootPath = fields.required("path", asCString);
    if (!rootPath) fail(fields.at("path"), "must not be empty");
    return { path: resolvePath(base, rootPath), readonly: fields.or("readonly", asBoolean, false) };
  });
  const hostname = top.optional("hostname", asCString);
  const domainname = top.optional("domainname", asCString);
  const spec: OciSpec = {
    ociVersion,
    bundle: base,
    root,
    ...(hostname === undefined ? {} : { hostname }),
    ...(domainname === undefined ? {} : { domainname }),
    annotations: top.or("annotations", asStringMap, {}),
    process: top.required("process", asProcess),
    mounts: top.or("mounts", list(asMount(base)), []),
    linux: top.or("linux", asLinux, asLinux({}, "linux")),
    hooks: top.or("hooks", asHooks, NO_HOOKS),
  };
  checkConsistency(spec);
  return spec;
}

/** Reads and checks `<bundle>/config.json`. Every failure is a one-line {@link SpecError}. */
export function readSpec(bundle: string): OciSpec {
  const file = `${resolvePath(bundle)}/config.json`;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new SpecError("", `${file}: no such file (an OCI bundle has its config.json at its top)`);
    }
    throw new SpecError("", `${file}: cannot read: ${error instanceof Error ? error.message : String(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // V8's message already gives the position, line and column.
    throw new SpecError("", `${file}: invalid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseSpec(json, bundle);
}
