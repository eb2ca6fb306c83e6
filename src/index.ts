/**
 * Ferry's public surface. Every exported name is listed here or in src/shared-exports.ts (the names
 * `ferry/client` exports too); nothing else is public.
 */

export type {
  AdmitWait,
  FollowOptions,
  LaunchItem,
  ListFilter,
  OpenOptions,
  OwnerScope,
  QueueOptions,
  ResultOrState,
  RetryOptions,
  ScopedWaitOptions,
} from "./api/ferry.js";
export { Ferry } from "./api/ferry.js";
export type { FerryScope, HandleCalls, OwnerCaller } from "./api/scoped.js";
export { parseDuration } from "./core/duration.js";
export type { BackoffPolicy } from "./core/job.js";
export { JOB_STATES } from "./core/job.js";
export type { LaunchOptions, WaitOptions } from "./core/options.js";
export {
  type SqlExecOptions,
  type SqlExecPayload,
  type SqlExecResult,
  sqlExecHandler,
} from "./handlers/sql-exec.js";
export { PLUGIN_API_VERSION } from "./plugins/api-range.js";
export { definePlugin, type PluginDefinition } from "./plugins/define-plugin.js";
export type { FiringGate } from "./scheduler/fire.js";
export type { Serializer } from "./serializers/index.js";
export { getSerializer, registerDecoder, registerEncoder, registerSerializer } from "./serializers/index.js";
export * from "./shared-exports.js";
export type { Store } from "./store/store.js";
export type { WorkerEventMap } from "./worker/events.js";
export type { Handler, JobContext, JobInfo } from "./worker/handler.js";
export type { WorkerOptions } from "./worker/worker.js";
export { Worker } from "./worker/worker.js";
