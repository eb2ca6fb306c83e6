import type { JobState } from "../../core/job.js";
import { DEFAULT_POLICY } from "../../core/options.js";
import { cancelledError } from "../rescue.js";
import { JOB_COLUMNS_NO_RESULT, type JobRow, toJobRecord } from "../rows.js";
import type { CancelResult, JobFilter, JobRecord, ListRequest, PurgeRequest } from "../store.js";
import type { Client } from "./connection.js";
import { bumpCounters } from "./enqueue.js";
import type { Outbox } from "./notifier.js";

type Cascade = (client: Client, id: string, succeeded: boolean, outbox: Outbox) => Promise<void>;

export type ConsumeAnswer =
  | { readonly status: "ok"; readonly record: JobRecord }
  | { readonly status: "not_finished" | "consumed" | "missing" };

/** WHERE clause for a job filter, numbered from `first`. Column names are fixed; values are bound. */
export function filterClause(filter: JobFilter, first = 1): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    parts.push(sql.replace("?", `$${first + params.length - 1}`));
  };
  if (filter.state !== undefined) add("state = ?", filter.state);
  if (filter.queue !== undefined) add("queue = ?", filter.queue);
  if (filter.label !== undefined) add("label LIKE ? ESCAPE '\\'", filter.label);
  if (filter.owner !== undefined) add("owner = ?", filter.owner);
  if (filter.handler !== undefined) add("handler = ?", filter.handler);
  return { sql: parts.length === 0 ? "true" : parts.join(" AND "), params };
}

/** The owner's controls over one job or a filtered set, each inside the caller's transaction. */
export function makeControls(s: string, cascade: Cascade) {
  async function cancel(client: Client, id: string, graceMs: number, outbox: Outbox): Promise<CancelResult> {
    const waiting = await client.query<{ has_dependents: boolean }>(
      `UPDATE ${s}.jobs SET state = 'cancelled', finished_at = ${s}.ms_now(), error = $2,
         expires_at = ${s}.ms_now() + coalesce((policy::jsonb ->> 'resultTtlMs')::bigint, $3)
       WHERE id = $1 AND state IN ('scheduled', 'queued') RETURNING has_dependents`,
      [id, JSON.stringify(cancelledError(0)), DEFAULT_POLICY.resultTtlMs],
    );
    if (waiting.rows[0] !== undefined) {
      await bumpCounters(client, s, { cancelled: 1 });
      outbox.changed.push(id);
      if (waiting.rows[0].has_dependents) await cascade(client, id, false, outbox);
      return { state: "cancelled" };
    }
    const flagged = await client.query(
      `UPDATE ${s}.jobs SET cancel_requested = true,
         cancel_deadline = least(coalesce(cancel_deadline, ${s}.ms_now() + $2), ${s}.ms_now() + $2)
       WHERE id = $1 AND state = 'running'`,
      [id, graceMs],
    );
    if ((flagged.rowCount ?? 0) > 0) {
      outbox.changed.push(id);
      outbox.cancels.push([id, graceMs]);
      return { state: "running" };
    }
    const row = await client.query<{ state: JobState }>(`SELECT state FROM ${s}.jobs WHERE id = $1`, [id]);
    return { state: row.rows[0]?.state };
  }

  async function idsMatching(client: Client, filter: JobFilter, extra: string): Promise<string[]> {
    const { sql, params } = filterClause(filter);
    const rows = await client.query<{ id: string }>(
      `SELECT id FROM ${s}.jobs WHERE ${sql} AND ${extra} ORDER BY id FOR UPDATE`,
      params,
    );
    return rows.rows.map((r) => r.id);
  }

  async function deleteJobs(client: Client, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    await client.query(
      `DELETE FROM ${s}.job_deps WHERE parent = ANY($1::uuid[]) OR child = ANY($1::uuid[])`,
      [ids],
    );
    const deleted = await client.query(`DELETE FROM ${s}.jobs WHERE id = ANY($1::uuid[])`, [ids]);
    return deleted.rowCount ?? 0;
  }

  return {
    async consumeResult(client: Client, id: string): Promise<ConsumeAnswer> {
      const rows = await client.query<JobRow>(`SELECT * FROM ${s}.jobs WHERE id = $1 FOR UPDATE`, [id]);
      const row = rows.rows[0];
      if (row === undefined) return { status: "missing" };
      if (row.consumed) return { status: "consumed" };
      if (row.state !== "completed" && row.state !== "failed" && row.state !== "cancelled") {
        return { status: "not_finished" };
      }
      await client.query(
        `UPDATE ${s}.jobs SET consumed = true, result = NULL, payload = NULL WHERE id = $1`,
        [id],
      );
      return { status: "ok", record: toJobRecord(row) };
    },
    cancel,
    async cancelMany(client: Client, filter: JobFilter, graceMs: number, outbox: Outbox): Promise<number> {
      const ids = await idsMatching(client, filter, "state IN ('scheduled', 'queued', 'running')");
      for (const id of ids) await cancel(client, id, graceMs, outbox);
      return ids.length;
    },
    async detach(client: Client, id: string): Promise<boolean> {
      const done = await client.query(
        `UPDATE ${s}.jobs SET detached = true, cookie_hash = NULL, result = NULL,
           expires_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ${s}.ms_now() END
         WHERE id = $1`,
        [id],
      );
      return (done.rowCount ?? 0) > 0;
    },
    async detachMany(client: Client, filter: JobFilter): Promise<number> {
      const { sql, params } = filterClause(filter);
      const done = await client.query(
        `UPDATE ${s}.jobs SET detached = true, cookie_hash = NULL, result = NULL,
           expires_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ${s}.ms_now() END
         WHERE ${sql} AND NOT detached`,
        params,
      );
      return done.rowCount ?? 0;
    },
    async retry(client: Client, id: string, outbox: Outbox): Promise<boolean> {
      // It would wait forever on a parent that will never complete: retry the parent first.
      const blocked = await client.query(
        `SELECT 1 FROM ${s}.job_deps d JOIN ${s}.jobs p ON p.id = d.parent
         WHERE d.child = $1 AND p.state IN ('failed', 'cancelled') LIMIT 1`,
        [id],
      );
      if ((blocked.rowCount ?? 0) > 0) return false;
      let rows: { queue: string }[];
      try {
        await client.query("SAVEPOINT ferry_retry");
        rows = (
          await client.query<{ queue: string }>(
            `UPDATE ${s}.jobs SET state = 'queued', attempts = 0, run_at = ${s}.ms_now(), started_at = NULL,
               finished_at = NULL, error = NULL, result = NULL, consumed = false, cancel_requested = false,
               cancel_deadline = NULL, expires_at = NULL, progress = NULL,
               pending_deps = (SELECT count(*) FROM ${s}.job_deps d JOIN ${s}.jobs p ON p.id = d.parent
                               WHERE d.child = $1 AND p.state <> 'completed')
             WHERE id = $1 AND state IN ('failed', 'cancelled') AND payload IS NOT NULL RETURNING queue`,
            [id],
          )
        ).rows;
        await client.query("RELEASE SAVEPOINT ferry_retry");
      } catch (error) {
        // Another unfinished job holds its uniqueKey now.
        if ((error as { code?: string }).code !== "23505") throw error;
        await client.query("ROLLBACK TO SAVEPOINT ferry_retry");
        return false;
      }
      const row = rows[0];
      if (row === undefined) return false;
      outbox.changed.push(id);
      outbox.queues.add(row.queue);
      return true;
    },
    async purge(client: Client, request: PurgeRequest): Promise<number> {
      const states = request.state === undefined ? ["completed", "failed", "cancelled"] : [request.state];
      const ids = await client.query<{ id: string }>(
        `SELECT id FROM ${s}.jobs WHERE state = ANY($1::text[]) AND finished_at <= ${s}.ms_now() - $2 FOR UPDATE`,
        [states, request.olderThanMs],
      );
      return deleteJobs(
        client,
        ids.rows.map((r) => r.id),
      );
    },
    // Counts of windows that have ended count as zero: a group idle for a window needs no row.
    pruneEndedRatesSql: `DELETE FROM ${s}.group_rates WHERE (queue, group_key) IN (
        SELECT r.queue, r.group_key FROM ${s}.group_rates r LEFT JOIN ${s}.queues q ON q.name = r.queue
        WHERE q.group_rate_period_ms IS NULL OR (r.window_no + 1) * q.group_rate_period_ms <= ${s}.ms_now()
        LIMIT $1)`,
    anyExpiredSql: `SELECT 1 FROM ${s}.jobs WHERE finished_at IS NOT NULL AND expires_at <= ${s}.ms_now() LIMIT 1`,
    async pruneExpired(client: Client, limit: number): Promise<number> {
      const ids = await client.query<{ id: string }>(
        `SELECT id FROM ${s}.jobs WHERE finished_at IS NOT NULL AND expires_at <= ${s}.ms_now()
         LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      return deleteJobs(
        client,
        ids.rows.map((r) => r.id),
      );
    },
  };
}

/** Reads: one job, several, a page, and the counts. */
export function makeQueries(s: string) {
  return {
    getJobSql: `SELECT * FROM ${s}.jobs WHERE id = $1`,
    getJobsSql: `SELECT * FROM ${s}.jobs WHERE id = ANY($1::uuid[])`,
    list(request: ListRequest): { text: string; values: unknown[] } {
      const { sql, params } = filterClause(request);
      let after = "";
      if (request.afterId !== undefined) {
        params.push(request.afterId);
        after = ` AND id > $${params.length}`;
      }
      params.push(request.limit);
      return {
        text: `SELECT ${JOB_COLUMNS_NO_RESULT} FROM ${s}.jobs WHERE ${sql}${after} ORDER BY id LIMIT $${params.length}`,
        values: params,
      };
    },
    countsSql: `SELECT queue, state, count(*)::int AS n FROM ${s}.jobs GROUP BY queue, state`,
    countersSql: `SELECT name, sum(value)::bigint AS value FROM ${s}.counters GROUP BY name`,
  };
}
