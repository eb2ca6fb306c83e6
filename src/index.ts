/** Ferry's public surface. Every exported name is listed here; nothing else is public. */

export type {
  CallerLaunchItem,
  CallerLaunchOptions,
  CallerScheduleChange,
  CallerScheduleOptions,
  FerryCaller,
  ScheduleCaller,
} from "./api/caller.js";
export { defineJob } from "./api/define-job.js";
export type { LaunchItem, ListFilter, OpenOptions, Outcome, QueueOptions, WatchEvent } from "./api/ferry.js";
export { Ferry } from "./api/ferry.js";
export type { ScheduleView, ScheduleWhen } from "./api/schedules.js";
export type { Duration } from "./core/duration.js";
export { parseDuration } from "./core/duration.js";
export { ErrorCode, FerryError, isErrorCode } from "./core/errors.js";
export type {
  BackoffPolicy,
  ErrorInfo,
  Handle,
  JobListRow,
  JobResult,
  JobState,
  JobStatus,
  LaunchedHandle,
} from "./core/job.js";
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
export type { Store, StoreStats, WorkerInfo } from "./store/store.js";
export type { WorkerEventMap } from "./worker/events.js";
export type { Handler, JobContext, JobDefinition, JobInfo, PayloadSchema } from "./worker/handler.js";
export type { WorkerOptions } from "./worker/worker.js";
export { Worker } from "./worker/worker.js";
