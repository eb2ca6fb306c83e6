/**
 * Keeps what an inline plugin loads inside its folder, as the permission model does for a plugin
 * process: an `import` (a resolve hook, inline-import-hooks.mjs) or `require` made from a file in
 * the folder may resolve only to a `node:` built-in, into the folder, or into Ferry's own code.
 * This stops a plugin from loading files nobody checked by accident or by a stray path; it is no
 * wall against a plugin that means harm, which in the daemon's process can read any file the
 * daemon can (docs/plugins.md).
 */
import Module, { isBuiltin, register } from "node:module";
import { FerryError } from "../core/errors.js";
import { inside } from "./checks.js";
import { FERRY_CODE } from "./ferry-files.js";

const HOOKS = new URL("./inline-import-hooks.mjs", import.meta.url).href;
/**
 * What a plugin's `ferry` and `ferry/plugin` resolve to: the modules this daemon runs (the hook
 * passes them on to Node's resolver, so a daemon run from its TypeScript sources finds them too).
 */
const FERRY_ENTRY_URLS = {
  ferry: new URL("../index.js", import.meta.url).href,
  "ferry/plugin": new URL("../plugin.js", import.meta.url).href,
};

/** The plugin folders guarded so far: hooks stay registered for the life of the process. */
const guarded = new Set<string>();

/** Guards imports and requires made from files in `folder` (a real path), from now on. */
export function guardInlineImports(folder: string): void {
  if (guarded.has(folder)) return;
  if (guarded.size === 0) guardRequire();
  guarded.add(folder);
  // A URL of its own per folder: one URL would be one module instance, whose state the next
  // registration would overwrite. register() returns once initialize ran, so the plugin's first
  // import is already judged.
  register(`${HOOKS}?folder=${encodeURIComponent(folder)}`, {
    data: { folder, ferryCode: [...FERRY_CODE], ferryEntries: FERRY_ENTRY_URLS },
  });
}

/** Why `resolved` (a path or a built-in's name) may not be loaded from `parent`; undefined if it may. */
function requireRefusal(parent: string, request: string, resolved: string): string | undefined {
  const folder = [...guarded].find((candidate) => inside(candidate, parent));
  if (folder === undefined || isBuiltin(resolved)) return undefined;
  if (inside(folder, resolved) || FERRY_CODE.some((root) => inside(root, resolved))) return undefined;
  return (
    `${parent} requires ${request} (${resolved}), outside its plugin folder: a plugin may import ` +
    "only node: built-ins, ferry and the files in its own folder (its node_modules included)"
  );
}

type ResolveFilename = (
  request: string,
  parent: { filename?: unknown } | undefined,
  ...rest: unknown[]
) => string;

/** CommonJS `require` does not pass through Node 20's resolve hooks: wrap its resolver instead. */
function guardRequire(): void {
  const cjs = Module as unknown as { _resolveFilename: ResolveFilename };
  const original = cjs._resolveFilename;
  cjs._resolveFilename = function (this: unknown, request, parent, ...rest) {
    const resolved = original.call(this, request, parent, ...rest);
    const from = parent?.filename;
    const refusal = typeof from === "string" ? requireRefusal(from, request, resolved) : undefined;
    if (refusal !== undefined) throw new FerryError("FERRY_PERMISSION_DENIED", refusal);
    return resolved;
  };
}
