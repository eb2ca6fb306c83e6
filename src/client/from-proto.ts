/**
 * RPC answers as the library's values: statuses, results, list rows, stats, workers and
 * schedules, with times as Dates and absent fields as null, so a caller's code reads the same
 * whether it holds a `Ferry` or a remote client.
 */
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { ScheduleView } from "../api/schedules.js";
import type { ErrorInfo, JobListRow, JobResult, JobState, JobStatus } from "../core/job.js";
import type { Worker as PbWorker, StatsResponse } from "../gen/ferry/v1/admin_pb.js";
import type {
  ErrorInfo as PbErrorInfo,
  JobListRow as PbJobListRow,
  JobResult as PbJobResult,
  JobStatus as PbJobStatus,
} from "../gen/ferry/v1/jobs_pb.js";
import type { Schedule as PbSchedule } from "../gen/ferry/v1/schedules_pb.js";
import type { StoreStats, WorkerInfo } from "../store/store.js";

const date = (text: string | undefined): Date | null =>
  text === undefined || text === "" ? null : new Date(text);

export function errorInfoFrom(info: PbErrorInfo | undefined): ErrorInfo | null {
  if (info === undefined) return null;
  const fields = Object.keys(info.fields).length === 0 ? {} : { fields: { ...info.fields } };
  return {
    code: info.code,
    message: info.message,
    retryable: info.retryable,
    attempt: info.attempt,
    ...fields,
  };
}

export function statusFrom(status: PbJobStatus): JobStatus {
  return {
    id: status.id,
    handler: status.handler,
    queue: status.queue,
    state: status.state as JobState,
    attempts: status.attempts,
    maxAttempts: status.maxAttempts,
    progress: status.progress ?? null,
    label: status.label ?? null,
    priority: status.priority,
    owner: status.owner ?? null,
    launchedAt: new Date(status.launchedAt),
    runAt: new Date(status.runAt),
    startedAt: date(status.startedAt),
    finishedAt: date(status.finishedAt),
    consumed: status.consumed,
    cancelRequested: status.cancelRequested,
    errorInfo: errorInfoFrom(status.errorInfo),
  };
}

export const jsonFrom = (value: PbJobResult["value"]): JsonValue =>
  value === undefined ? null : toJson(ValueSchema, value);

export function resultFrom<T>(result: PbJobResult): JobResult<T> {
  const error = errorInfoFrom(result.error);
  return {
    id: result.id,
    state: result.state as JobResult["state"],
    ...(result.value === undefined ? {} : { value: jsonFrom(result.value) as T }),
    ...(error === null ? {} : { error }),
    attempts: result.attempts,
    startedAt: date(result.startedAt),
    finishedAt: date(result.finishedAt),
  };
}

export function listRowFrom(row: PbJobListRow): JobListRow {
  return {
    id: row.id,
    handler: row.handler,
    queue: row.queue,
    state: row.state as JobState,
    owner: row.owner ?? null,
    launchedAt: new Date(row.launchedAt),
    startedAt: date(row.startedAt),
    finishedAt: date(row.finishedAt),
    attempts: row.attempts,
    label: row.label ?? null,
    progress: row.progress ?? null,
    preview: row.preview ?? null,
    lastError: row.lastError ?? null,
    lastErrorCode: row.lastErrorCode ?? null,
    consumed: row.consumed,
  };
}

export function statsFrom(stats: StatsResponse): StoreStats {
  const byQueue: Record<string, Partial<Record<JobState, number>>> = {};
  for (const { queue, states } of stats.queues) {
    byQueue[queue] = Object.fromEntries(Object.entries(states).map(([state, n]) => [state, Number(n)]));
  }
  return {
    byQueue,
    launched: Number(stats.launched),
    completed: Number(stats.completed),
    failed: Number(stats.failed),
    cancelled: Number(stats.cancelled),
    timedOut: Number(stats.timedOut),
    avgRunMs: stats.avgRunMs,
  };
}

export function workerFrom(worker: PbWorker): WorkerInfo {
  return {
    id: worker.id,
    name: worker.name,
    host: worker.host,
    pid: worker.pid,
    queues: [...worker.queues],
    running: worker.running,
    startedAt: Date.parse(worker.startedAt),
    lastHeartbeatAt: Date.parse(worker.lastHeartbeatAt),
  };
}

export function scheduleFrom(schedule: PbSchedule): ScheduleView {
  return {
    id: schedule.id,
    name: schedule.name,
    handler: schedule.handler,
    cron: schedule.cron ?? null,
    tz: schedule.tz ?? null,
    everyMs: schedule.everyMs === undefined ? null : Number(schedule.everyMs),
    repeatLeft: schedule.repeatLeft ?? null,
    paused: schedule.paused,
    pausedReason: schedule.pausedReason ?? null,
    nextRunAt: date(schedule.nextRunAt),
    lastFiredAt: date(schedule.lastFiredAt),
  };
}
