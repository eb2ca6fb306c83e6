/**
 * RPC answers as the library's values: statuses, results, list rows, stats, workers and
 * schedules, with times as Dates and absent fields as null, so a caller's code reads the same
 * whether it holds a `Ferry` or a remote client. Stats, workers and schedules are read by the
 * converters the daemon writes them with (src/wire/rows.ts).
 */
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { ErrorInfo, JobListRow, JobResult, JobState, JobStatus } from "../core/job.js";
import type {
  ErrorInfo as PbErrorInfo,
  JobListRow as PbJobListRow,
  JobResult as PbJobResult,
  JobStatus as PbJobStatus,
} from "../gen/ferry/v1/jobs_pb.js";
import { dateFromWire as date } from "../wire/rows.js";

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

/** What a status and a list row both carry, read alike. */
function jobFieldsFrom(job: PbJobStatus | PbJobListRow) {
  return {
    id: job.id,
    handler: job.handler,
    queue: job.queue,
    state: job.state as JobState,
    attempts: job.attempts,
    progress: job.progress ?? null,
    label: job.label ?? null,
    owner: job.owner ?? null,
    launchedAt: new Date(job.launchedAt),
    startedAt: date(job.startedAt),
    finishedAt: date(job.finishedAt),
    consumed: job.consumed,
  };
}

export function statusFrom(status: PbJobStatus): JobStatus {
  return {
    ...jobFieldsFrom(status),
    maxAttempts: status.maxAttempts,
    priority: status.priority,
    runAt: new Date(status.runAt),
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
    ...jobFieldsFrom(row),
    preview: row.preview ?? null,
    lastError: row.lastError ?? null,
    lastErrorCode: row.lastErrorCode ?? null,
  };
}

export {
  scheduleFromWire as scheduleFrom,
  statsFromWire as statsFrom,
  workerFromWire as workerFrom,
} from "../wire/rows.js";
