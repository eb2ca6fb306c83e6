/**
 * The names `ferry` (src/index.ts) and `ferry/client` (src/client.ts) both export, listed once so
 * the two entry points cannot drift apart. `ferry/client` loads no store driver, so nothing here
 * may import one, even for a type's sake.
 */
export type {
  CallerLaunchItem,
  CallerLaunchOptions,
  CallerScheduleChange,
  CallerScheduleOptions,
  FerryCaller,
  ScheduleCaller,
} from "./api/caller.js";
export { defineJob } from "./api/define-job.js";
export type { Outcome, WatchEvent } from "./api/ferry.js";
export type { ScheduleView, ScheduleWhen } from "./api/schedules.js";
export type { Duration } from "./core/duration.js";
export { ErrorCode, FerryError, isErrorCode } from "./core/errors.js";
export type {
  ErrorInfo,
  Handle,
  JobListRow,
  JobResult,
  JobState,
  JobStatus,
  LaunchedHandle,
} from "./core/job.js";
export type { StoreStats, WorkerInfo } from "./store/store.js";
export type { JobDefinition, PayloadSchema } from "./worker/handler.js";
