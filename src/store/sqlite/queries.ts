import { JOB_COLUMNS_NO_RESULT, type JobRow, toJobRecord } from "../rows.js";
import { type StateCount, toStoreStats } from "../stats.js";
import type { JobFilter, JobRecord, ListRequest, StoreStats } from "../store.js";
import type { Db } from "./connection.js";

/** WHERE clause for a job filter, with its parameters. Column names are fixed; values are bound. */
export function filterClause(filter: JobFilter): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (filter.state !== undefined) {
    parts.push("state = ?");
    params.push(filter.state);
  }
  if (filter.queue !== undefined) {
    parts.push("queue = ?");
    params.push(filter.queue);
  }
  if (filter.label !== undefined) {
    parts.push("label LIKE ? ESCAPE '\\'");
    params.push(filter.label);
  }
  if (filter.owner !== undefined) {
    parts.push("owner = ?");
    params.push(filter.owner);
  }
  if (filter.handler !== undefined) {
    parts.push("handler = ?");
    params.push(filter.handler);
  }
  return { sql: parts.length === 0 ? "1 = 1" : parts.join(" AND "), params };
}

export function makeQueries(db: Db) {
  const one = db.prepare("SELECT * FROM jobs WHERE id = ?");
  // Counts through one partial index per state (see schema.ts): never a scan of the whole table.
  const countReady = db.prepare(
    "SELECT queue, 'queued' AS state, count(*) AS n FROM jobs INDEXED BY jobs_claim WHERE state = 'queued' AND pending_deps = 0 GROUP BY queue",
  );
  const countBlocked = db.prepare(
    "SELECT queue, 'queued' AS state, count(*) AS n FROM jobs INDEXED BY jobs_blocked WHERE state = 'queued' AND pending_deps > 0 GROUP BY queue",
  );
  const countScheduled = db.prepare(
    "SELECT queue, 'scheduled' AS state, count(*) AS n FROM jobs INDEXED BY jobs_due WHERE state = 'scheduled' GROUP BY queue",
  );
  const countRunning = db.prepare(
    "SELECT queue, 'running' AS state, count(*) AS n FROM jobs INDEXED BY jobs_running WHERE state = 'running' GROUP BY queue",
  );
  const countFinished = db.prepare(
    "SELECT queue, state, count(*) AS n FROM jobs INDEXED BY jobs_finished WHERE finished_at IS NOT NULL GROUP BY state, queue",
  );
  const counters = db.prepare("SELECT name, value FROM counters");

  return {
    getJob(id: string): JobRecord | undefined {
      const row = one.get(id) as JobRow | undefined;
      return row === undefined ? undefined : toJobRecord(row);
    },
    getJobs(ids: readonly string[]): JobRecord[] {
      if (ids.length === 0) return [];
      const rows = db
        .prepare(`SELECT * FROM jobs WHERE id IN (${ids.map(() => "?").join(", ")})`)
        .all(...ids) as JobRow[];
      return rows.map(toJobRecord);
    },
    listJobs(request: ListRequest): JobRecord[] {
      const { sql, params } = filterClause(request);
      const after = request.afterId === undefined ? "" : " AND id > ?";
      if (request.afterId !== undefined) params.push(request.afterId);
      const rows = db
        .prepare(`SELECT ${JOB_COLUMNS_NO_RESULT} FROM jobs WHERE ${sql}${after} ORDER BY id LIMIT ?`)
        .all(...params, request.limit) as JobRow[];
      return rows.map(toJobRecord);
    },
    stats(): StoreStats {
      const counts = [countReady, countBlocked, countScheduled, countRunning, countFinished].flatMap(
        (statement) => statement.all() as StateCount[],
      );
      return toStoreStats(counts, counters.all() as { name: string; value: number }[]);
    },
  };
}
