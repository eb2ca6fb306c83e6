import type { ErrorInfo, JobState } from "../../core/job.js";
import { parsePolicy } from "../policy-text.js";
import type { JobRecord, QueueInfo, ScheduleRecord, ScheduleSpec, WorkerInfo } from "../store.js";

/** A jobs row as `pg` hands it over (int8 parsed to number, see connection.ts). */
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
  consumed: boolean;
  detached: boolean;
  cancel_requested: boolean;
  fence: number;
  worker_id: string | null;
  lease_expires_at: number | null;
}

export const toJobRecord = (row: JobRow): JobRecord => ({
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
  consumed: row.consumed,
  detached: row.detached,
  cancelRequested: row.cancel_requested,
  fence: row.fence,
  workerId: row.worker_id,
  leaseExpiresAt: row.lease_expires_at,
});

/** Every column but the result: listing pages stay small. */
export const JOB_COLUMNS_NO_RESULT = `id, handler, queue, state, priority, owner, label, group_key, unique_key,
  serializer, payload, cookie_hash, attempts, max_attempts, policy, progress, launched_at, run_at, started_at,
  finished_at, error, consumed, detached, cancel_requested, fence, worker_id, lease_expires_at`;

export const toWorkerInfo = (row: {
  id: string;
  name: string;
  host: string;
  pid: number;
  queues: string;
  running: number;
  started_at: number;
  last_heartbeat_at: number;
}): WorkerInfo => ({
  id: row.id,
  name: row.name,
  host: row.host,
  pid: row.pid,
  queues: JSON.parse(row.queues) as string[],
  running: row.running,
  startedAt: row.started_at,
  lastHeartbeatAt: row.last_heartbeat_at,
});

export const toQueueInfo = (row: {
  name: string;
  paused: boolean;
  group_concurrency: number | null;
}): QueueInfo => ({
  name: row.name,
  paused: row.paused,
  groupConcurrency: row.group_concurrency,
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
  paused: boolean;
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
  paused: row.paused,
  nextRunAt: row.next_run_at,
  lastFiredAt: row.last_fired_at,
  createdAt: row.created_at,
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Ids reach SQL as uuid: anything else names no job (and must not become a query error). */
export const isJobId = (id: string): boolean => typeof id === "string" && UUID.test(id);
