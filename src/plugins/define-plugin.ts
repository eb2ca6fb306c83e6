/**
 * `definePlugin`: what a plugin module default-exports. The daemon checks the same rules again on
 * whatever a module exports, so a plugin that skips definePlugin is held to them too.
 */
import { invalidArgument } from "../core/errors.js";
import type { Handler } from "../worker/handler.js";

/** Lowercase letters, digits and `-`, starting with a letter: `acme`, `image-tools`. */
const pluginNameShape = /^[a-z][a-z0-9-]{0,63}$/;
/** One segment of a handler name: `greet`, `resize_image`. */
const handlerKeyShape = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Plugin names that would shadow the built-in handlers (`ferry.*`, `sql.*`). */
export const RESERVED_PLUGIN_NAMES: ReadonlySet<string> = new Set(["ferry", "sql"]);
const MAX_HANDLERS = 256;

export interface PluginDefinition {
  /** Handlers are registered as `NAME.HANDLER`. */
  readonly name: string;
  readonly version: string;
  readonly handlers: Readonly<Record<string, Handler<never, unknown>>>;
}

/** What a plugin says of itself, without its code: enough to check it and name its handlers. */
export interface PluginManifest {
  readonly name: string;
  readonly version: string;
  readonly handlers: readonly string[];
}

/**
 * Checks a plugin's name, version and handler names and returns them. `handlers` pairs each
 * exported key with whether its value is a function. Throws FERRY_INVALID_ARGUMENT naming the rule.
 */
export function checkManifest(
  name: unknown,
  version: unknown,
  handlers: readonly (readonly [string, boolean])[],
): PluginManifest {
  if (typeof name !== "string" || !pluginNameShape.test(name))
    throw invalidArgument("plugin name must be 1-64 lowercase letters, digits or -, starting with a letter");
  if (typeof version !== "string" || version.length === 0 || version.length > 64)
    throw invalidArgument("plugin version must be a string of 1-64 characters");
  if (handlers.length === 0) throw invalidArgument("a plugin needs at least one handler");
  if (handlers.length > MAX_HANDLERS) throw invalidArgument(`a plugin has at most ${MAX_HANDLERS} handlers`);
  for (const [key, isFunction] of handlers) {
    if (!handlerKeyShape.test(key))
      throw invalidArgument(
        `handler ${JSON.stringify(key)}: letters, digits, _ and -, starting with a letter`,
      );
    if (!isFunction) throw invalidArgument(`handler ${key} is not a function`);
  }
  return { name, version, handlers: handlers.map(([key]) => key) };
}

/** The handler entries of an exported `handlers` object, own enumerable keys only. */
export function handlerEntries(handlers: unknown): [string, boolean][] {
  if (handlers === null || typeof handlers !== "object" || Array.isArray(handlers))
    throw invalidArgument("plugin handlers must be an object of functions");
  return Object.keys(handlers).map((key) => [
    key,
    typeof (handlers as Record<string, unknown>)[key] === "function",
  ]);
}

/**
 * Declares a plugin: `export default definePlugin({ name: "acme", version: "1.2.3", handlers: {
 * greet } })` gives the handler `acme.greet`. Validates and returns the definition.
 */
export function definePlugin<const H extends Record<string, Handler<never, unknown>>>(definition: {
  readonly name: string;
  readonly version: string;
  readonly handlers: H;
}): PluginDefinition {
  if (definition === null || typeof definition !== "object")
    throw invalidArgument("definePlugin takes { name, version, handlers }");
  checkManifest(definition.name, definition.version, handlerEntries(definition.handlers));
  return Object.freeze({
    name: definition.name,
    version: definition.version,
    handlers: Object.freeze({ ...definition.handlers }),
  });
}
