/**
 * Rows as the SQL stores read them, and their conversion to the Store contract's records. SQLite
 * answers booleans as 0/1 and PostgreSQL as true/false: `Flag` takes both.
 */
import type { ErrorInfo, JobState } from "../core/job.js";
import { parsePolicy } from "./policy-text.js";
import type { ClaimedJob, JobRecord, QueueInfo, ScheduleRecord, ScheduleSpec, WorkerInfo } from "./store.js";

/** A boolean column: SQLite's 0/1 or PostgreSQL's boolean. */
export type Flag = number | boolean;
const isSet = (flag: Flag): boolean => flag === true || flag === 1;

export interface JobRow {
  id: string;
  handler: string;
  queue: string;
  state: JobState;
  priority: number;
  owner: string | null;
  label: string | null;
  group_key: string | null;
  unique_key: string | null;
  serializer: string;
  payload: Buffer | null;
  cookie_hash: Buffer | null;
  attempts: number;
  max_attempts: number;
  policy: string | null;
  progress: number | null;
  launched_at: number;
  run_at: number;
  started_at: number | null;
  finished_at: number | null;
  result?: Buffer | null;
  error: string | null;
  consumed: Flag;
  detached: Flag;
  cancel_requested: Flag;
  fence: number;
  worker_id: string | null;
  lease_expires_at: number | null;
}

export function toJobRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    handler: row.handler,
    queue: row.queue,
    state: row.state,
    priority: row.priority,
    owner: row.owner,
    label: row.label,
    group: row.group_key,
    uniqueKey: row.unique_key,
    serializer: row.serializer,
    payload: row.payload,
    cookieHash: row.cookie_hash,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    policy: parsePolicy(row.policy),
    progress: row.progress,
    launchedAt: row.launched_at,
    runAt: row.run_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    result: row.result ?? null,
    error: row.error === null ? null : (JSON.parse(row.error) as ErrorInfo),
    consumed: isSet(row.consumed),
    detached: isSet(row.detached),
    cancelRequested: isSet(row.cancel_requested),
    fence: row.fence,
    workerId: row.worker_id,
    leaseExpiresAt: row.lease_expires_at,
  };
}

/** Every column but the result blob: listing pages must stay small. */
export const JOB_COLUMNS_NO_RESULT = `id, handler, queue, state, priority, owner, label, group_key, unique_key,
  serializer, payload, cookie_hash, attempts, max_attempts, policy, progress, launched_at, run_at, started_at,
  finished_at, error, consumed, detached, cancel_requested, fence, worker_id, lease_expires_at`;

export interface WorkerRow {
  id: string;
  name: string;
  host: string;
  pid: number;
  queues: string;
  running: number;
  started_at: number;
  last_heartbeat_at: number;
}

export const toWorkerInfo = (row: WorkerRow): WorkerInfo => ({
  id: row.id,
  name: row.name,
  host: row.host,
  pid: row.pid,
  queues: JSON.parse(row.queues) as string[],
  running: row.running,
  startedAt: row.started_at,
  lastHeartbeatAt: row.last_heartbeat_at,
});

export interface QueueRow {
  name: string;
  paused: Flag;
  group_concurrency: number | null;
  group_rate_limit: number | null;
  /** bigint in PostgreSQL, which pg answers as a string. */
  group_rate_period_ms: number | string | null;
}

export const toQueueInfo = (row: QueueRow): QueueInfo => ({
  name: row.name,
  paused: isSet(row.paused),
  groupConcurrency: row.group_concurrency,
  groupRate:
    row.group_rate_limit === null || row.group_rate_period_ms === null
      ? null
      : { limit: row.group_rate_limit, periodMs: Number(row.group_rate_period_ms) },
});

export interface ScheduleRow {
  id: string;
  name: string;
  handler: string;
  spec: string;
  repeat_left: number | null;
  payload: Buffer;
  serializer: string;
  options: string;
  owner: string | null;
  paused: Flag;
  /** Absent on a store not yet migrated to schema 5. */
  paused_reason?: string | null;
  next_run_at: number | null;
  last_fired_at: number | null;
  created_at: number;
}

export const toScheduleRecord = (row: ScheduleRow): ScheduleRecord => ({
  id: row.id,
  name: row.name,
  handler: row.handler,
  spec: JSON.parse(row.spec) as ScheduleSpec,
  repeatLeft: row.repeat_left,
  payload: row.payload,
  serializer: row.serializer,
  options: row.options,
  owner: row.owner,
  paused: isSet(row.paused),
  pausedReason: row.paused_reason ?? null,
  nextRunAt: row.next_run_at,
  lastFiredAt: row.last_fired_at,
  createdAt: row.created_at,
});

/** What a claim reads back: all a worker needs, nothing it can't use. */
export const CLAIMED_COLUMNS = [
  "id",
  "handler",
  "queue",
  "payload",
  "serializer",
  "attempts",
  "max_attempts",
  "policy",
  "fence",
  "label",
  "group_key",
  "launched_at",
  "priority",
  "run_at",
] as const;

export interface ClaimedRow {
  id: string;
  handler: string;
  queue: string;
  payload: Buffer;
  serializer: string;
  attempts: number;
  max_attempts: number;
  policy: string | null;
  fence: number;
  label: string | null;
  group_key: string | null;
  launched_at: number;
  priority: number;
  run_at: number;
}

/** A just-claimed job: no cancel request yet (cancelling a waiting job ends it at once). */
export const toClaimedJob = (row: ClaimedRow, startedAt: number): ClaimedJob => ({
  id: row.id,
  handler: row.handler,
  queue: row.queue,
  payload: row.payload,
  serializer: row.serializer,
  attempt: row.attempts,
  maxAttempts: row.max_attempts,
  policy: parsePolicy(row.policy),
  fence: row.fence,
  label: row.label,
  group: row.group_key,
  launchedAt: row.launched_at,
  startedAt,
  cancelRequested: false,
});

/** RETURNING order is not the claim order: restore it (priority, then due time, then age). */
export const byClaimOrder = (a: ClaimedRow, b: ClaimedRow): number =>
  b.priority - a.priority || a.run_at - b.run_at || (a.id < b.id ? -1 : 1);
