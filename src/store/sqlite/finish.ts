import { DETACHED_KEEP_MS } from "../../core/defaults.js";
import type { ErrorInfo } from "../../core/job.js";
import { DEFAULT_POLICY } from "../../core/options.js";
import { parsePolicy } from "../policy-text.js";
import { cancelledError, dependencyFailed } from "../rescue.js";
import { type CounterDelta, noCounts } from "../stats.js";
import type { HeartbeatResult, LeaseRef, Outcome, WorkerInfo } from "../store.js";
import type { Db } from "./connection.js";
import { bumpCounters } from "./counters.js";

interface HeldRow {
  cancel_requested: number;
  has_dependents: number;
  detached: number;
  started_at: number;
  attempts: number;
  policy: string | null;
  queue: string;
}

/** What changed, so the store can tell listeners after the commit. */
export interface Touched {
  readonly changed: string[];
  readonly queues: Set<string>;
}

/** Recording how attempts ended, and the dependency cascade that follows, inside one transaction. */
/**
 * `rowids` maps the ids this process claimed to their rowids, so completing one skips the lookup
 * through the text primary key; an id not in it (claimed elsewhere) is found by id.
 */
export function makeFinish(db: Db, rowids: Map<string, number>) {
  const held = db.prepare(
    `SELECT cancel_requested, has_dependents, detached, started_at, attempts, policy, queue FROM jobs
     WHERE id = ? AND fence = ? AND state = 'running'`,
  );
  const toFinished = db.prepare(
    `UPDATE jobs SET state = @state, finished_at = @now, result = @result, error = @error,
       worker_id = NULL, lease_expires_at = NULL, cancel_deadline = NULL, expires_at = @expiresAt,
       progress = CASE WHEN @state = 'completed' THEN 1 ELSE progress END
     WHERE id = @id`,
  );
  const toWaiting = db.prepare(
    `UPDATE jobs SET state = @state, run_at = @runAt, error = coalesce(@error, error),
       attempts = attempts - @refund, worker_id = NULL, lease_expires_at = NULL
     WHERE id = @id`,
  );
  const complete = db.prepare<unknown[]>(
    `UPDATE jobs SET state = 'completed', finished_at = ?, error = NULL, worker_id = NULL,
       lease_expires_at = NULL, cancel_deadline = NULL, progress = 1,
       result = CASE WHEN detached = 1 THEN NULL ELSE ? END,
       expires_at = ? + min(coalesce(json_extract(policy, '$.resultTtlMs'), ?),
                            CASE WHEN detached = 1 THEN 3600000 ELSE 9007199254740991 END)
     WHERE id = ? AND fence = ? AND state = 'running'
     RETURNING has_dependents, started_at`,
  );
  const completeByRowid = db.prepare<unknown[]>(
    complete.source.replace("WHERE id = ? AND fence", "WHERE rowid = ? AND id = ? AND fence"),
  );
  const childrenReady = db.prepare(
    `UPDATE jobs SET pending_deps = pending_deps - 1
     WHERE id IN (SELECT child FROM job_deps WHERE parent = ?) AND state IN ('scheduled', 'queued')
     RETURNING queue`,
  );
  const failDescendants = db.prepare(
    `WITH RECURSIVE d(id) AS (
       SELECT child FROM job_deps WHERE parent = @id
       UNION SELECT job_deps.child FROM job_deps JOIN d ON job_deps.parent = d.id)
     UPDATE jobs SET state = 'failed', error = @error, finished_at = @now,
       expires_at = @now + coalesce(json_extract(policy, '$.resultTtlMs'), @defaultTtl)
     WHERE id IN (SELECT id FROM d) AND state IN ('scheduled', 'queued')
     RETURNING id`,
  );

  function retentionEnd(row: HeldRow, now: number): number {
    const ttl = parsePolicy(row.policy).resultTtlMs;
    // Nobody can collect a detached job's result: keep the row an hour for listing, no longer.
    return now + (row.detached === 1 ? Math.min(ttl, DETACHED_KEEP_MS) : ttl);
  }

  function cascade(id: string, succeeded: boolean, now: number, touched: Touched): void {
    if (succeeded) {
      for (const child of childrenReady.all(id) as { queue: string }[]) touched.queues.add(child.queue);
      return;
    }
    const error = dependencyFailed(id);
    const failed = failDescendants.all({
      id,
      error: JSON.stringify(error),
      now,
      defaultTtl: DEFAULT_POLICY.resultTtlMs,
    }) as { id: string }[];
    for (const row of failed) touched.changed.push(row.id);
    bumpCounters(db, { failed: failed.length });
  }

  function finishOne(
    outcome: Outcome,
    now: number,
    counts: Required<CounterDelta>,
    touched: Touched,
  ): boolean {
    if (outcome.kind === "completed") {
      // The common case in one statement: completion needs nothing read first.
      const rowid = rowids.get(outcome.id);
      if (rowid !== undefined) rowids.delete(outcome.id);
      const done = (
        rowid === undefined
          ? complete.get(now, outcome.result, now, DEFAULT_POLICY.resultTtlMs, outcome.id, outcome.fence)
          : completeByRowid.get(
              now,
              outcome.result,
              now,
              DEFAULT_POLICY.resultTtlMs,
              rowid,
              outcome.id,
              outcome.fence,
            )
      ) as { has_dependents: number; started_at: number } | undefined;
      if (done === undefined) return false;
      touched.changed.push(outcome.id);
      counts.completed += 1;
      counts.run_ms_total += Math.max(0, now - done.started_at);
      counts.run_count += 1;
      if (done.has_dependents === 1) cascade(outcome.id, true, now, touched);
      return true;
    }
    rowids.delete(outcome.id);
    const row = held.get(outcome.id, outcome.fence) as HeldRow | undefined;
    if (row === undefined) return false;
    touched.changed.push(outcome.id);
    let kind = outcome.kind;
    // A cancel requested while it ran wins over a retry or snooze: the owner asked it to stop.
    if (row.cancel_requested === 1 && (kind === "retry" || kind === "snooze" || kind === "release"))
      kind = "cancelled";
    switch (kind) {
      case "failed":
      case "cancelled": {
        const error: ErrorInfo =
          "error" in outcome && (outcome.kind === kind || kind === "failed")
            ? outcome.error
            : cancelledError(row.attempts);
        toFinished.run({
          state: kind,
          now,
          result: null,
          error: JSON.stringify(error),
          expiresAt: retentionEnd(row, now),
          id: outcome.id,
        });
        if (kind === "failed") counts.failed += 1;
        else counts.cancelled += 1;
        if ("timedOut" in outcome && outcome.timedOut) counts.timed_out += 1;
        if (row.has_dependents === 1) cascade(outcome.id, false, now, touched);
        return true;
      }
      case "retry":
      case "snooze":
      case "release": {
        const delayMs = "delayMs" in outcome ? outcome.delayMs : 0;
        const error = outcome.kind === "retry" ? JSON.stringify(outcome.error) : null;
        if (outcome.kind === "retry" && outcome.timedOut) counts.timed_out += 1;
        toWaiting.run({
          state: delayMs > 0 ? "scheduled" : "queued",
          runAt: now + delayMs,
          error,
          refund: kind === "retry" ? 0 : 1,
          id: outcome.id,
        });
        touched.queues.add(row.queue);
        return true;
      }
    }
  }

  function finish(outcomes: readonly Outcome[], now: number, touched: Touched): boolean[] {
    const counts = noCounts();
    const applied = outcomes.map((outcome) => finishOne(outcome, now, counts, touched));
    bumpCounters(db, counts);
    return applied;
  }

  return { finish, cascade };
}

/** Lease renewal, progress, and the rescuer. */
export function makeLeases(db: Db) {
  const upsertWorker = db.prepare(
    `INSERT INTO workers (id, name, host, pid, queues, running, started_at, last_heartbeat_at)
     VALUES (@id, @name, @host, @pid, @queues, @running, @startedAt, @now)
     ON CONFLICT (id) DO UPDATE SET running = excluded.running, last_heartbeat_at = excluded.last_heartbeat_at`,
  );
  const renew = db.prepare(
    "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND fence = ? AND state = 'running'",
  );
  const cancelAsked = db.prepare(
    `SELECT id, max(0, coalesce(cancel_deadline, 0) - ?) AS graceLeftMs FROM jobs
     WHERE worker_id = ? AND state = 'running' AND cancel_requested = 1`,
  );
  const progress = db.prepare(
    "UPDATE jobs SET progress = ? WHERE id = ? AND fence = ? AND state = 'running'",
  );
  const expired = db.prepare(
    `SELECT id, fence, attempts, max_attempts, cancel_requested, policy, error FROM jobs
     WHERE state = 'running' AND (lease_expires_at < @now OR (cancel_requested = 1 AND cancel_deadline < @forceBefore))`,
  );
  const staleWorkers = db.prepare("DELETE FROM workers WHERE last_heartbeat_at < ?");
  const anyExpired = db.prepare(
    `SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'running'
       AND (lease_expires_at < @now OR (cancel_requested = 1 AND cancel_deadline < @forceBefore)))
     OR EXISTS (SELECT 1 FROM workers WHERE last_heartbeat_at < @staleBefore) AS any`,
  );

  function heartbeat(
    worker: WorkerInfo,
    leases: readonly LeaseRef[],
    leaseMs: number,
    now: number,
  ): HeartbeatResult {
    upsertWorker.run({ ...worker, queues: JSON.stringify(worker.queues), now });
    const lost: string[] = [];
    for (const lease of leases) {
      if (renew.run(now + leaseMs, lease.id, lease.fence).changes === 0) lost.push(lease.id);
    }
    const cancelRequested = cancelAsked.all(now, worker.id) as { id: string; graceLeftMs: number }[];
    return { lost, cancelRequested };
  }

  return {
    heartbeat,
    setProgress: (lease: LeaseRef, value: number): boolean =>
      progress.run(value, lease.id, lease.fence).changes > 0,
    expired: (now: number) =>
      // A worker that ignores its cancel deadline by more than a heartbeat is forced from here.
      expired.all({ now, forceBefore: now - 2_000 }) as {
        id: string;
        fence: number;
        attempts: number;
        max_attempts: number;
        cancel_requested: number;
        policy: string | null;
        error: string | null;
      }[],
    dropStaleWorkers: (before: number) => staleWorkers.run(before).changes,
    anyExpired: (now: number, staleBefore: number): boolean =>
      (anyExpired.get({ now, forceBefore: now - 2_000, staleBefore }) as { any: number }).any === 1,
  };
}
