import type pg from "pg";
import { DEFAULT_POLICY } from "../../core/options.js";
import { DETACHED_KEEP_MS } from "../finish-rules.js";
import { makePolicyText } from "../policy-text.js";
import { CLAIMED_COLUMNS } from "../rows.js";
import type { DispatchOffer, NewJob, Outcome } from "../store.js";
import type { PgClaimedRow } from "./claim.js";
import { insertPlainJobs, plainJobArrays, toBuffer } from "./plain-insert.js";

/**
 * The two hot paths as single statements (one round trip, atomic on their own, no BEGIN/COMMIT):
 * a worker's round (complete what it finished, claim more) and a plain launch. The general
 * transaction path in finish.ts / claim.ts / enqueue.ts does the same work in several statements
 * and handles everything else (other outcomes, several queues, group limits, uniqueKey,
 * dependencies, `tx`).
 *
 * Each statement sends its own notifications (pg_notify inside it: delivered only if it
 * commits), tagged with this store's origin so its own listener skips them: the store tells its
 * own subscribers directly, without the round trip through the server.
 */

type Completed = Extract<Outcome, { kind: "completed" }>;

/** The columns of a claimed job in a round's answer. */
const ROUND_COLUMNS = [...CLAIMED_COLUMNS, "started_at"] as const;

/** One result row shape for every kind: the given columns, NULL for the rest. */
const resultRow = (kind: string, from: string, given: Record<string, string>, gate = "NULL::boolean") =>
  `SELECT ${kind} AS kind, ${ROUND_COLUMNS.map((c) => `${given[c] ?? "NULL"} AS ${c}`).join(", ")}, ${gate} AS gate_closed FROM ${from}`;

const RESULT = [
  resultRow("'claimed'", "claimed", Object.fromEntries(ROUND_COLUMNS.map((c) => [c, `claimed.${c}`]))),
  resultRow("'done'", "done", { id: "done.id" }),
  resultRow("'ready'", "woken", { queue: "woken.queue" }),
  // Always one row: it also makes sure the notifications and counters ran.
  resultRow(
    "NULL",
    "(SELECT count(*) FROM notified) AS k, (SELECT count(*) FROM counted) AS k2",
    {},
    "NOT (SELECT open FROM gate)",
  ),
].join("\n    UNION ALL ");

/** A claimed job's columns, or (other kinds) only `id` or `queue`, the rest NULL. */
export interface FastRoundRow extends PgClaimedRow {
  kind: "done" | "claimed" | "ready" | null;
  gate_closed: boolean | null;
}

/**
 * A worker's round in one statement, for one queue that is neither paused nor group-limited.
 * Rows come back tagged: `done` (a completion that applied), `claimed` (a job now held),
 * `ready` (a queue where scheduled jobs became due). A completion not applied here is either
 * fenced off or has dependents: the caller hands it to the general path, which knows which. `gate_closed` on the first row says the queue
 * is paused or group-limited: nothing was claimed, use the general path.
 */
export function makeFastRound(s: string) {
  const text = `
    WITH c AS (SELECT ${s}.ms_now() AS n),
    done AS (
      UPDATE ${s}.jobs j SET state = 'completed', finished_at = c.n, error = NULL, worker_id = NULL,
        lease_expires_at = NULL, cancel_deadline = NULL, progress = 1,
        result = CASE WHEN j.detached THEN NULL ELSE x.result END,
        expires_at = c.n + least(coalesce((j.policy::jsonb ->> 'resultTtlMs')::bigint, $4),
                                 CASE WHEN j.detached THEN ${DETACHED_KEEP_MS} ELSE 9007199254740991 END)
      FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS x(id, fence, result), c
      -- Jobs with dependents go the general way: its cascade runs as a separate statement, so it
      -- sees a child linked while this one waited on the parent's row lock.
      WHERE j.id = x.id AND j.fence = x.fence AND j.state = 'running' AND NOT j.has_dependents
      RETURNING j.id, j.watched, greatest(0, c.n - j.started_at) AS run_ms),
    counted AS (
      INSERT INTO ${s}.counters (name, shard, value)
      SELECT name, $10, value FROM (VALUES
        ('completed', (SELECT count(*) FROM done)),
        ('run_count', (SELECT count(*) FROM done)),
        ('run_ms_total', (SELECT coalesce(sum(run_ms), 0) FROM done))) AS v(name, value)
      WHERE value > 0
      ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + excluded.value
      RETURNING 1),
    gate AS (SELECT NOT EXISTS (SELECT 1 FROM ${s}.queues
                                WHERE name = $5 AND (paused OR group_concurrency IS NOT NULL OR group_rate_limit IS NOT NULL)) AS open),
    promoted AS (
      UPDATE ${s}.jobs SET state = 'queued' WHERE id IN (
        SELECT id FROM ${s}.jobs WHERE state = 'scheduled' AND run_at <= (SELECT n FROM c)
        ORDER BY run_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
      RETURNING queue),
    picked AS (
      SELECT id FROM ${s}.jobs
      WHERE state = 'queued' AND pending_deps = 0 AND queue = $5 AND handler = ANY($6::text[])
        AND (SELECT open FROM gate)
      ORDER BY priority DESC, run_at, id LIMIT $7 FOR UPDATE SKIP LOCKED),
    claimed AS (
      UPDATE ${s}.jobs j SET state = 'running', attempts = j.attempts + 1, fence = j.fence + 1, worker_id = $8,
        started_at = c.n, lease_expires_at = c.n + $9, progress = NULL
      -- = ANY(ARRAY(…)): an index probe per picked id (a join here was planned as a scan of the table).
      FROM c WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
      RETURNING ${ROUND_COLUMNS.map((c) => `j.${c}`).join(", ")}, j.watched),
    -- Only jobs somebody waits on or watches from another process (see markWatched): a NOTIFY per
    -- round would cost the drain half its rate.
    changed AS (SELECT id FROM done WHERE watched UNION ALL SELECT id FROM claimed WHERE watched),
    woken AS (SELECT DISTINCT queue FROM promoted),
    notified AS (
      SELECT pg_notify($11, json_build_object('o', $12::text, 'c', array_agg(id))::text)
      FROM (SELECT id, (row_number() OVER ()) / 150 AS chunk FROM changed) AS t GROUP BY chunk
      UNION ALL
      SELECT pg_notify($11, json_build_object('o', $12::text, 'e', array_agg(queue))::text)
      FROM woken HAVING count(*) > 0)
    ${RESULT}`;

  return (
    finished: readonly Completed[],
    queue: string,
    handlers: readonly string[],
    limit: number,
    workerId: string,
    leaseMs: number,
    channel: string,
    origin: string,
  ): pg.QueryConfig => ({
    name: `ferry-round-${s}`,
    text,
    values: [
      finished.map((o) => o.id),
      finished.map((o) => o.fence),
      finished.map((o) => toBuffer(o.result)),
      DEFAULT_POLICY.resultTtlMs,
      queue,
      handlers,
      limit,
      workerId,
      leaseMs,
      Math.floor(Math.random() * 16),
      channel,
      origin,
    ],
  });
}

/** A launch of plain jobs (no uniqueKey, no dependencies, no tx) in one statement. */
export function makeFastLaunch(s: string) {
  const policyText = makePolicyText();
  const text = `
    WITH c AS (SELECT ${s}.ms_now() AS n),
    ins AS (${insertPlainJobs(s, "c")}
      RETURNING queue),
    counted AS (
      INSERT INTO ${s}.counters (name, shard, value) SELECT 'launched', $16, count(*) FROM ins
      ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + excluded.value
      RETURNING 1),
    notified AS (
      SELECT pg_notify($17, json_build_object('o', $18::text, 'e', array_agg(DISTINCT queue))::text) FROM ins)
    SELECT (SELECT count(*) FROM notified) + (SELECT count(*) FROM counted) AS k`;

  return (jobs: readonly NewJob[], channel: string, origin: string): pg.QueryConfig => ({
    name: `ferry-launch-${s}`,
    text,
    values: [...plainJobArrays(jobs, policyText), Math.floor(Math.random() * 16), channel, origin],
  });
}

/**
 * Direct dispatch (EnqueueContext.dispatch): one plain, due job written already claimed by the
 * offering worker when its queue is open, else queued as usual (and announced). A dispatched job
 * never enters the claim index, and nobody else needs waking: no NOTIFY.
 */
export function makeDispatchLaunch(s: string) {
  const policyText = makePolicyText();
  const open = (value: string, otherwise: string) => `CASE WHEN g.open THEN ${value} ELSE ${otherwise} END`;
  const text = `
    WITH c AS (SELECT ${s}.ms_now() AS n),
    g AS (SELECT NOT EXISTS (SELECT 1 FROM ${s}.queues
                             WHERE name = $3 AND (paused OR group_concurrency IS NOT NULL OR group_rate_limit IS NOT NULL)) AS open),
    ins AS (
      INSERT INTO ${s}.jobs (id, handler, queue, state, priority, owner, label, serializer, payload,
        cookie_hash, max_attempts, policy, launched_at, run_at, detached,
        attempts, fence, worker_id, started_at, lease_expires_at)
      SELECT $1::uuid, $2, $3, ${open("'running'", "'queued'")}, $4, $5, $6, $7, $8, $9, $10, $11, c.n, c.n, $12,
        ${open("1", "0")}, ${open("1", "0")}, ${open("$13", "NULL")}, ${open("c.n", "NULL")}, ${open("c.n + $14", "NULL")}
      FROM c, g
      RETURNING ${ROUND_COLUMNS.join(", ")}, state),
    counted AS (
      INSERT INTO ${s}.counters (name, shard, value) VALUES ('launched', $15, 1)
      ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + excluded.value
      RETURNING 1),
    notified AS (
      SELECT pg_notify($16, json_build_object('o', $17::text, 'e', array[queue])::text)
      FROM ins WHERE state = 'queued')
    SELECT ins.*, (SELECT count(*) FROM counted) + (SELECT count(*) FROM notified) AS k FROM ins`;

  return (job: NewJob, offer: DispatchOffer, channel: string, origin: string): pg.QueryConfig => ({
    name: `ferry-dispatch-${s}`,
    text,
    values: [
      job.id,
      job.handler,
      job.queue,
      job.priority,
      job.owner,
      job.label,
      job.serializer,
      toBuffer(job.payload),
      toBuffer(job.cookieHash),
      job.maxAttempts,
      policyText(job.policy),
      job.detached,
      offer.workerId,
      offer.leaseMs,
      Math.floor(Math.random() * 16),
      channel,
      origin,
    ],
  });
}

/** What the dispatch launch answers: the job's claimed columns and whether it was dispatched. */
export interface DispatchRow extends PgClaimedRow {
  state: "running" | "queued";
}
