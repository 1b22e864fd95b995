/**
 * Reads config.json's `hooks` (config.md, "POSIX-platform Hooks"): the
 * programs the runtime runs at six points of a container's life, in the
 * order given, each with the container's state on its stdin.
 *
 * @module
 */
import { asAbsolutePath, asCString, Fields, integer, list, type Read, type Shape } from "./fields.ts";
import { asEnvEntry } from "./process.ts";
import { type Hook, HOOK_KINDS, type HookKind } from "../../steps/hook_process.ts";

/** One hook, as steps/hook_process.ts takes it. */
export type OciHook = Hook;

export type OciHooks = { readonly [K in HookKind]: readonly OciHook[] };

const HOOK: Shape = { path: "read", args: "read", env: "read", timeout: "read" };

const asHook: Read<OciHook> = (value, path) => {
  const hook = new Fields(value, path, HOOK);
  const hookPath = hook.required("path", asAbsolutePath);
  const env = hook.optional("env", list(asEnvEntry));
  // The spec: "If set, timeout MUST be greater than zero".
  const timeout = hook.optional("timeout", integer(1, 2 ** 31 - 1));
  return {
    path: hookPath,
    args: hook.or("args", list(asCString), [hookPath]),
    ...(env === undefined ? {} : { env }),
    ...(timeout === undefined ? {} : { timeout }),
  };
};

/** No hooks: what a config without `hooks` asks for. */
export const NO_HOOKS: OciHooks = Object.fromEntries(HOOK_KINDS.map((kind) => [kind, []])) as unknown as OciHooks;

export const asHooks: Read<OciHooks> = (value, path) => {
  const hooks = new Fields(value, path, Object.fromEntries(HOOK_KINDS.map((kind) => [kind, "read" as const])));
  return Object.fromEntries(HOOK_KINDS.map((kind) => [kind, hooks.or(kind, list(asHook), [])])) as unknown as OciHooks;
};
