import { byClaimOrder, CLAIMED_COLUMNS, type ClaimedRow, toClaimedJob } from "../rows.js";
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

const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");

/** Claims jobs inside an open write transaction; one indexed query per queue. */
export function makeClaim(db: Db, rowids: Map<string, number>) {
  const promoteDue = db.prepare("UPDATE jobs SET state = 'queued' WHERE state = 'scheduled' AND run_at <= ?");
  const queueSettings = db.prepare("SELECT name, paused, group_concurrency FROM queues");
  const byHandlerCount = new Map<number, Stmt>();
  const groupCandidatesByCount = new Map<number, Stmt>();
  const runningInGroup = db.prepare(
    "SELECT count(*) AS n FROM jobs WHERE state = 'running' AND queue = ? AND group_key = ?",
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

  /** Queues with a group limit: pick in order, skipping groups already at their limit. */
  function claimWithGroups(
    request: ClaimRequest,
    queue: string,
    limit: number,
    perGroup: number,
    now: number,
  ) {
    const rows = groupCandidates(request.handlers.length).all(queue, ...request.handlers, limit * 8) as {
      id: string;
      group_key: string | null;
    }[];
    const running = new Map<string, number>();
    const claimed: SqliteClaimedRow[] = [];
    for (const row of rows) {
      if (claimed.length >= limit) break;
      if (row.group_key !== null) {
        let count = running.get(row.group_key);
        if (count === undefined) count = (runningInGroup.get(queue, row.group_key) as { n: number }).n;
        if (count >= perGroup) {
          running.set(row.group_key, count);
          continue;
        }
        running.set(row.group_key, count + 1);
      }
      const got = claimOne.get(request.workerId, now, now + request.leaseMs, row.id) as
        | SqliteClaimedRow
        | undefined;
      if (got !== undefined) claimed.push(got);
    }
    return claimed;
  }

  return function claim(request: ClaimRequest, now: number): ClaimedJob[] {
    if (request.handlers.length === 0 || request.limit <= 0) return [];
    // Entries for jobs this process lost (rescued elsewhere) are never finished here: keep it bounded.
    if (rowids.size > 100_000) rowids.clear();
    promoteDue.run(now);
    const settings = new Map(
      (queueSettings.all() as { name: string; paused: number; group_concurrency: number | null }[]).map(
        (q) => [q.name, q],
      ),
    );
    const out: ClaimedJob[] = [];
    for (const queue of request.queues) {
      const remaining = request.limit - out.length;
      if (remaining <= 0) break;
      const setting = settings.get(queue);
      if (setting?.paused === 1) continue;
      const rows =
        setting?.group_concurrency != null
          ? claimWithGroups(request, queue, remaining, setting.group_concurrency, now)
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
