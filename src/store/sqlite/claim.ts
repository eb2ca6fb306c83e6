import { type GroupRate, rateWindow } from "../../core/group-rate.js";
import {
  byClaimOrder,
  CLAIMED_COLUMNS,
  type ClaimedRow,
  type QueueRow,
  toClaimedJob,
  toQueueInfo,
} from "../rows.js";
import type { ClaimedJob, ClaimRequest } from "../store.js";
import type { Db, Stmt } from "./connection.js";

/** Claimed rows carry their rowid: finishing one skips the text primary key. */
interface SqliteClaimedRow extends ClaimedRow {
  rowid: number;
}

// Only what a worker needs: a claimed job has started now and has no cancel request (cancelling a
// waiting job ends it at once), so those are not read back.
const RETURNING = `RETURNING rowid, ${CLAIMED_COLUMNS.join(", ")}`;
// Claimed rows are found through jobs_claim, whose entries carry the rowid: updating by rowid
// skips a second lookup through the text primary key.

/** A queue's group settings, as the claim applies them (null: no such limit). */
interface GroupLimits {
  readonly perGroup: number | null;
  readonly rate: GroupRate | null;
}

const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");

/** Claims jobs inside an open write transaction; one indexed query per queue. */
export function makeClaim(db: Db, rowids: Map<string, number>) {
  const promoteDue = db.prepare("UPDATE jobs SET state = 'queued' WHERE state = 'scheduled' AND run_at <= ?");
  const queueSettings = db.prepare(
    "SELECT name, paused, group_concurrency, group_rate_limit, group_rate_period_ms FROM queues",
  );
  const byHandlerCount = new Map<number, Stmt>();
  const groupCandidatesByCount = new Map<number, Stmt>();
  const runningInGroup = db.prepare(
    "SELECT count(*) AS n FROM jobs WHERE state = 'running' AND queue = ? AND group_key = ?",
  );
  const startsInWindow = db.prepare(
    "SELECT window_no, starts FROM group_rates WHERE queue = ? AND group_key = ?",
  );
  const countStart = db.prepare(
    `INSERT INTO group_rates (queue, group_key, window_no, starts) VALUES (?, ?, ?, 1)
     ON CONFLICT (queue, group_key) DO UPDATE SET
       starts = CASE WHEN window_no = excluded.window_no THEN starts + 1 ELSE 1 END,
       window_no = excluded.window_no`,
  );
  const claimOne = db.prepare(
    `UPDATE jobs SET state = 'running', attempts = attempts + 1, fence = fence + 1, worker_id = ?,
       started_at = ?, lease_expires_at = ?, progress = NULL
     WHERE id = ? AND state = 'queued' ${RETURNING}`,
  );

  const claimBatch = (handlerCount: number) => {
    let statement = byHandlerCount.get(handlerCount);
    if (statement === undefined) {
      statement = db.prepare(
        `UPDATE jobs SET state = 'running', attempts = attempts + 1, fence = fence + 1, worker_id = ?,
           started_at = ?, lease_expires_at = ?, progress = NULL
         WHERE rowid IN (
           SELECT rowid FROM jobs INDEXED BY jobs_claim
           WHERE state = 'queued' AND pending_deps = 0 AND queue = ? AND handler IN (${placeholders(handlerCount)})
           ORDER BY priority DESC, run_at, id LIMIT ?)
         ${RETURNING}`,
      );
      byHandlerCount.set(handlerCount, statement);
    }
    return statement;
  };

  const groupCandidates = (handlerCount: number) => {
    let statement = groupCandidatesByCount.get(handlerCount);
    if (statement === undefined) {
      statement = db.prepare(
        `SELECT id, group_key FROM jobs INDEXED BY jobs_claim
         WHERE state = 'queued' AND pending_deps = 0 AND queue = ? AND handler IN (${placeholders(handlerCount)})
         ORDER BY priority DESC, run_at, id LIMIT ?`,
      );
      groupCandidatesByCount.set(handlerCount, statement);
    }
    return statement;
  };

  /**
   * Queues with group limits (`groupConcurrency`, `groupRate`): pick in order, skipping groups at
   * their limit. Runs inside the claim's write transaction, so the counts cannot race.
   */
  function claimWithGroups(
    request: ClaimRequest,
    queue: string,
    limit: number,
    limits: GroupLimits,
    now: number,
  ) {
    const rows = groupCandidates(request.handlers.length).all(queue, ...request.handlers, limit * 8) as {
      id: string;
      group_key: string | null;
    }[];
    const window = limits.rate === null ? 0 : rateWindow(now, limits.rate.periodMs);
    const running = new Map<string, number>();
    const started = new Map<string, number>();
    const claimed: SqliteClaimedRow[] = [];
    for (const row of rows) {
      if (claimed.length >= limit) break;
      const group = row.group_key;
      if (group !== null && limits.perGroup !== null) {
        const count = running.get(group) ?? (runningInGroup.get(queue, group) as { n: number }).n;
        running.set(group, count);
        if (count >= limits.perGroup) continue;
      }
      if (group !== null && limits.rate !== null) {
        let count = started.get(group);
        if (count === undefined) {
          const seen = startsInWindow.get(queue, group) as { window_no: number; starts: number } | undefined;
          count = seen?.window_no === window ? seen.starts : 0;
        }
        started.set(group, count);
        if (count >= limits.rate.limit) continue;
      }
      const got = claimOne.get(request.workerId, now, now + request.leaseMs, row.id) as
        | SqliteClaimedRow
        | undefined;
      if (got === undefined) continue;
      claimed.push(got);
      if (group === null) continue;
      if (limits.perGroup !== null) running.set(group, running.get(group)! + 1);
      if (limits.rate !== null) {
        started.set(group, started.get(group)! + 1);
        countStart.run(queue, group, window);
      }
    }
    return claimed;
  }

  return function claim(request: ClaimRequest, now: number): ClaimedJob[] {
    if (request.handlers.length === 0 || request.limit <= 0) return [];
    // Entries for jobs this process lost (rescued elsewhere) are never finished here: keep it bounded.
    if (rowids.size > 100_000) rowids.clear();
    promoteDue.run(now);
    const settings = new Map((queueSettings.all() as QueueRow[]).map((q) => [q.name, toQueueInfo(q)]));
    const out: ClaimedJob[] = [];
    for (const queue of request.queues) {
      const remaining = request.limit - out.length;
      if (remaining <= 0) break;
      const setting = settings.get(queue);
      if (setting?.paused) continue;
      const rows =
        setting !== undefined && (setting.groupConcurrency !== null || setting.groupRate !== null)
          ? claimWithGroups(
              request,
              queue,
              remaining,
              { perGroup: setting.groupConcurrency, rate: setting.groupRate },
              now,
            )
          : (claimBatch(request.handlers.length).all(
              request.workerId,
              now,
              now + request.leaseMs,
              queue,
              ...request.handlers,
              remaining,
            ) as SqliteClaimedRow[]);
      if (rows.length > 1) rows.sort(byClaimOrder);
      for (const row of rows) {
        out.push(toClaimedJob(row, now));
        rowids.set(row.id, row.rowid);
      }
    }
    return out;
  };
}
