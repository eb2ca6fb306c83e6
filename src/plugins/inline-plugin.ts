/**
 * An inline plugin: its module imported into the daemon and its handlers registered as they are.
 * Fast, but a plugin that exits, crashes or leaks takes the daemon with it (docs/plugins.md). Its
 * imports are kept inside its folder (inline-import-guard.ts).
 */
import { pathToFileURL } from "node:url";
import type { Handler } from "../worker/handler.js";
import { checkManifest, handlerEntries, type PluginManifest } from "./define-plugin.js";
import { guardInlineImports } from "./inline-import-guard.js";

export interface InlinePlugin {
  readonly manifest: PluginManifest;
  readonly handlers: Record<string, Handler<never, unknown>>;
}

export async function importInlinePlugin(folder: string, module: string): Promise<InlinePlugin> {
  guardInlineImports(folder);
  const imported = (await import(pathToFileURL(module).href)) as { default?: unknown };
  let exported = imported.default as Record<string, unknown> | null | undefined;
  // A CommonJS module compiled from ESM: `exports.default` arrives one level down.
  if (exported !== null && typeof exported === "object" && !("name" in exported) && "default" in exported)
    exported = exported.default as Record<string, unknown> | null | undefined;
  if (exported === null || typeof exported !== "object") throw new Error("the module has no default export");
  const fns = exported.handlers as Record<string, Handler<never, unknown>>;
  const manifest = checkManifest(exported.name, exported.version, handlerEntries(fns));
  return {
    manifest,
    handlers: Object.fromEntries(manifest.handlers.map((key) => [`${manifest.name}.${key}`, fns[key]!])),
  };
}
