import type { JobListRow, JobResult, JobState, JobStatus } from "../core/job.js";
import { isFinished } from "../core/job.js";
import { getSerializer } from "../serializers/index.js";
import type { JobRecord } from "../store/store.js";

/** A scheduled job whose time has come is queued, whatever the store last wrote. */
export function visibleState(record: JobRecord, now: number): JobState {
  return record.state === "scheduled" && record.runAt <= now ? "queued" : record.state;
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

export function toStatus(record: JobRecord, now: number): JobStatus {
  return {
    id: record.id,
    handler: record.handler,
    queue: record.queue,
    state: visibleState(record, now),
    attempts: record.attempts,
    maxAttempts: record.maxAttempts,
    progress: record.progress,
    label: record.label,
    priority: record.priority,
    owner: record.owner,
    launchedAt: new Date(record.launchedAt),
    runAt: new Date(record.runAt),
    startedAt: date(record.startedAt),
    finishedAt: date(record.finishedAt),
    consumed: record.consumed,
    cancelRequested: record.cancelRequested,
    errorInfo: record.error,
  };
}

export function toResult(record: JobRecord): JobResult {
  const base = {
    id: record.id,
    state: record.state as JobResult["state"],
    attempts: record.attempts,
    startedAt: date(record.startedAt),
    finishedAt: date(record.finishedAt),
  };
  if (record.state === "completed") {
    const value = record.result === null ? undefined : getSerializer(record.serializer).decode(record.result);
    return value === undefined ? base : { ...base, value };
  }
  return record.error === null ? base : { ...base, error: record.error };
}

const PREVIEW_CHARS = 120;

/** The payload's first 120 characters as JSON, for listings. Never throws. */
export function previewOf(record: JobRecord): string | null {
  if (record.payload === null) return null;
  try {
    if (record.serializer === "json") {
      const head = Buffer.from(
        record.payload.buffer,
        record.payload.byteOffset,
        Math.min(record.payload.length, 512),
      );
      return head.toString("utf8").slice(0, PREVIEW_CHARS);
    }
    const value = getSerializer(record.serializer).decode(record.payload);
    const text =
      JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "null";
    return text.slice(0, PREVIEW_CHARS);
  } catch {
    return null;
  }
}

export function toListRow(record: JobRecord, now: number, showPayload: boolean): JobListRow {
  return {
    id: record.id,
    handler: record.handler,
    queue: record.queue,
    state: visibleState(record, now),
    owner: record.owner,
    launchedAt: new Date(record.launchedAt),
    startedAt: date(record.startedAt),
    finishedAt: date(record.finishedAt),
    attempts: record.attempts,
    label: record.label,
    progress: record.progress,
    preview: showPayload ? previewOf(record) : null,
    lastError: record.error === null ? null : record.error.message,
    lastErrorCode: record.error === null ? null : record.error.code,
    consumed: record.consumed,
  };
}

export { isFinished };
