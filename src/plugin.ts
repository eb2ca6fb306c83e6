/**
 * `ferry/plugin`: what a plugin author needs, and nothing that opens a store. A plugin process
 * loads this entry (a few small modules), not the library behind `ferry`.
 */
export type { Duration } from "./core/duration.js";
export { ErrorCode, FerryError } from "./core/errors.js";
export { PLUGIN_API_VERSION } from "./plugins/api-range.js";
export { definePlugin, type PluginDefinition } from "./plugins/define-plugin.js";
export type { Handler, JobContext, JobInfo } from "./worker/handler.js";
