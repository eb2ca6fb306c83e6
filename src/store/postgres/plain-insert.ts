import type { JobPolicy } from "../../core/job.js";
import type { NewJob } from "../store.js";

/** Bytes for `pg` without copying (a Buffer view of the same memory). */
export const toBuffer = (bytes: Uint8Array | null): Buffer | null =>
  bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * The multi-row INSERT of plain jobs (no uniqueKey, no dependencies), from 15 parallel arrays
 * bound as $1..$15 (`plainJobArrays`). `clock` is a FROM item that gives the database time as
 * `c.n`. Used alone inside a transaction, and inside the one-statement launch.
 */
export const insertPlainJobs = (s: string, clock: string): string => `
  INSERT INTO ${s}.jobs (id, handler, queue, state, priority, owner, label, group_key, serializer, payload,
    cookie_hash, max_attempts, policy, launched_at, run_at, detached)
  SELECT id, handler, queue, CASE WHEN coalesce(run_at, c.n + delay) > c.n THEN 'scheduled' ELSE 'queued' END,
    priority, owner, label, group_key, serializer, payload, cookie_hash, max_attempts, policy, c.n,
    coalesce(run_at, c.n + delay), detached
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::bytea[], $10::bytea[], $11::int[], $12::text[], $13::bigint[], $14::bigint[], $15::boolean[])
    AS j(id, handler, queue, priority, owner, label, group_key, serializer, payload, cookie_hash,
      max_attempts, policy, delay, run_at, detached), ${clock}`;

/** The 15 arrays `insertPlainJobs` reads, in order. */
export const plainJobArrays = (
  jobs: readonly NewJob[],
  policyText: (policy: JobPolicy) => string | null,
): unknown[] => [
  jobs.map((j) => j.id),
  jobs.map((j) => j.handler),
  jobs.map((j) => j.queue),
  jobs.map((j) => j.priority),
  jobs.map((j) => j.owner),
  jobs.map((j) => j.label),
  jobs.map((j) => j.group),
  jobs.map((j) => j.serializer),
  jobs.map((j) => toBuffer(j.payload)),
  jobs.map((j) => toBuffer(j.cookieHash)),
  jobs.map((j) => j.maxAttempts),
  jobs.map((j) => policyText(j.policy)),
  jobs.map((j) => j.delayMs),
  jobs.map((j) => j.runAt),
  jobs.map((j) => j.detached),
];
