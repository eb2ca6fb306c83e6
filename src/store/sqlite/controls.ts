import type { JobState } from "../../core/job.js";
import { DEFAULT_POLICY } from "../../core/options.js";
import { cancelledError } from "../rescue.js";
import { type JobRow, toJobRecord } from "../rows.js";
import type { CancelResult, JobFilter, JobRecord, PurgeRequest } from "../store.js";
import type { Db } from "./connection.js";
import { bumpCounters } from "./counters.js";
import type { Touched } from "./finish.js";
import { filterClause } from "./queries.js";

type Cascade = (id: string, succeeded: boolean, now: number, touched: Touched) => void;

export type ConsumeAnswer =
  | { readonly status: "ok"; readonly record: JobRecord }
  | { readonly status: "not_finished" | "consumed" | "missing" };

/** The owner's controls over one job or a filtered set: all run inside a write transaction. */
export function makeControls(db: Db, cascade: Cascade) {
  const one = db.prepare("SELECT * FROM jobs WHERE id = ?");
  const consume = db.prepare("UPDATE jobs SET consumed = 1, result = NULL, payload = NULL WHERE id = ?");
  const cancelWaiting = db.prepare(
    `UPDATE jobs SET state = 'cancelled', finished_at = @now, error = @error, expires_at = @now + coalesce(json_extract(policy, '$.resultTtlMs'), @defaultTtl)
     WHERE id = @id AND state IN ('scheduled', 'queued') RETURNING has_dependents`,
  );
  const flagRunning = db.prepare(
    `UPDATE jobs SET cancel_requested = 1, cancel_deadline = min(coalesce(cancel_deadline, @deadline), @deadline)
     WHERE id = @id AND state = 'running'`,
  );
  const stateOf = db.prepare("SELECT state FROM jobs WHERE id = ?");
  const detachOne = db.prepare(
    `UPDATE jobs SET detached = 1, cookie_hash = NULL, result = NULL,
       expires_at = CASE WHEN finished_at IS NULL THEN NULL ELSE @now END
     WHERE id = @id`,
  );
  const retryOne = db.prepare(
    `UPDATE jobs SET state = 'queued', attempts = 0, run_at = @now, started_at = NULL, finished_at = NULL,
       error = NULL, result = NULL, consumed = 0, cancel_requested = 0, cancel_deadline = NULL, expires_at = NULL,
       progress = NULL,
       pending_deps = (SELECT count(*) FROM job_deps d JOIN jobs p ON p.id = d.parent
                       WHERE d.child = @id AND p.state <> 'completed')
     WHERE id = @id AND state IN ('failed', 'cancelled') AND payload IS NOT NULL RETURNING queue`,
  );
  const failedParent = db.prepare(
    `SELECT 1 FROM job_deps d JOIN jobs p ON p.id = d.parent
     WHERE d.child = ? AND p.state IN ('failed', 'cancelled') LIMIT 1`,
  );
  const depsOf = db.prepare("DELETE FROM job_deps WHERE parent = ? OR child = ?");

  function cancel(id: string, graceMs: number, now: number, touched: Touched): CancelResult {
    const waiting = cancelWaiting.get({
      id,
      now,
      error: JSON.stringify(cancelledError(0)),
      defaultTtl: DEFAULT_POLICY.resultTtlMs,
    }) as { has_dependents: number } | undefined;
    if (waiting !== undefined) {
      bumpCounters(db, { cancelled: 1 });
      touched.changed.push(id);
      if (waiting.has_dependents === 1) cascade(id, false, now, touched);
      return { state: "cancelled" };
    }
    if (flagRunning.run({ id, deadline: now + graceMs }).changes > 0) {
      touched.changed.push(id);
      return { state: "running" };
    }
    const row = stateOf.get(id) as { state: JobState } | undefined;
    return { state: row?.state };
  }

  function idsMatching(filter: JobFilter, extra: string): string[] {
    const { sql, params } = filterClause(filter);
    return (
      db.prepare(`SELECT id FROM jobs WHERE ${sql} AND ${extra}`).all(...params) as { id: string }[]
    ).map((r) => r.id);
  }

  function deleteJobs(ids: readonly string[]): number {
    for (const id of ids) depsOf.run(id, id);
    let deleted = 0;
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      deleted += db
        .prepare(`DELETE FROM jobs WHERE id IN (${chunk.map(() => "?").join(", ")})`)
        .run(...chunk).changes;
    }
    return deleted;
  }

  return {
    consumeResult(id: string): ConsumeAnswer {
      const row = one.get(id) as JobRow | undefined;
      if (row === undefined) return { status: "missing" };
      if (row.consumed === 1) return { status: "consumed" };
      if (row.state !== "completed" && row.state !== "failed" && row.state !== "cancelled") {
        return { status: "not_finished" };
      }
      consume.run(id);
      return { status: "ok", record: toJobRecord(row) };
    },
    cancel,
    cancelMany(filter: JobFilter, graceMs: number, now: number, touched: Touched): number {
      const ids = idsMatching(filter, "state IN ('scheduled', 'queued', 'running')");
      for (const id of ids) cancel(id, graceMs, now, touched);
      return ids.length;
    },
    detach(id: string, now: number): boolean {
      return detachOne.run({ id, now }).changes > 0;
    },
    detachMany(filter: JobFilter, now: number): number {
      const ids = idsMatching(filter, "detached = 0");
      for (const id of ids) detachOne.run({ id, now });
      return ids.length;
    },
    retry(id: string, now: number, touched: Touched): boolean {
      // It would wait forever on a parent that will never complete: retry the parent first.
      if (failedParent.get(id) !== undefined) return false;
      let row: { queue: string } | undefined;
      try {
        row = retryOne.get({ id, now }) as { queue: string } | undefined;
      } catch (error) {
        if ((error as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") return false;
        throw error;
      }
      if (row === undefined) return false;
      touched.changed.push(id);
      touched.queues.add(row.queue);
      return true;
    },
    purge(request: PurgeRequest, now: number): number {
      const states = request.state === undefined ? ["completed", "failed", "cancelled"] : [request.state];
      const ids = (
        db
          .prepare(
            `SELECT id FROM jobs WHERE state IN (${states.map(() => "?").join(", ")}) AND finished_at <= ?`,
          )
          .all(...states, now - request.olderThanMs) as { id: string }[]
      ).map((r) => r.id);
      return deleteJobs(ids);
    },
    anyExpired(now: number): boolean {
      return (
        db
          .prepare(
            `SELECT 1 FROM jobs INDEXED BY jobs_finished
             WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at IS NOT NULL AND expires_at <= ? LIMIT 1`,
          )
          .get(now) !== undefined
      );
    },
    pruneExpired(limit: number, now: number): number {
      const ids = (
        db
          .prepare(
            `SELECT id FROM jobs INDEXED BY jobs_finished
             WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at IS NOT NULL AND expires_at <= ?
             LIMIT ?`,
          )
          .all(now, limit) as { id: string }[]
      ).map((r) => r.id);
      return deleteJobs(ids);
    },
  };
}
