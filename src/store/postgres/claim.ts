import { type GroupRate, rateWindow } from "../../core/group-rate.js";
import {
  byClaimOrder,
  CLAIMED_COLUMNS,
  type ClaimedRow,
  type QueueRow,
  toClaimedJob,
  toQueueInfo,
} from "../rows.js";
import type { ClaimedJob, ClaimRequest, HeartbeatResult, LeaseRef, WorkerInfo } from "../store.js";
import type { Client } from "./connection.js";
import type { Outbox } from "./notifier.js";

/** A claimed row as PostgreSQL returns it: the start time is the database's. */
export interface PgClaimedRow extends ClaimedRow {
  started_at: number;
}

const RETURNING = `RETURNING ${CLAIMED_COLUMNS.map((c) => `j.${c}`).join(", ")}, j.started_at`;

export const toPgClaimedJob = (row: PgClaimedRow): ClaimedJob => toClaimedJob(row, row.started_at);

/** A queue's group settings, as the claim applies them (null: no such limit). */
interface GroupLimits {
  readonly perGroup: number | null;
  readonly rate: GroupRate | null;
}

/** Claiming with FOR UPDATE SKIP LOCKED: concurrent claimers pass over each other's rows, never wait. */
export function makeClaim(s: string) {
  const take = (where: string) => `
    UPDATE ${s}.jobs j SET state = 'running', attempts = j.attempts + 1, fence = j.fence + 1, worker_id = $1,
      started_at = c.n, lease_expires_at = c.n + $2, progress = NULL
    FROM (SELECT ${s}.ms_now() AS n) AS c
    WHERE j.id = ANY(ARRAY(${where}))
    ${RETURNING}`;
  const claimBatch = take(`SELECT id FROM ${s}.jobs
      WHERE state = 'queued' AND pending_deps = 0 AND queue = $3 AND handler = ANY($4::text[])
      ORDER BY priority DESC, run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED`);
  const claimIds = take("SELECT unnest($3::uuid[])");

  /**
   * Queues with group limits (`groupConcurrency`, `groupRate`): claims in that queue take turns
   * (advisory lock), then pick in order, skipping groups at their limit.
   */
  async function claimWithGroups(
    client: Client,
    request: ClaimRequest,
    queue: string,
    limit: number,
    limits: GroupLimits,
  ): Promise<PgClaimedRow[]> {
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`ferry-groups:${s}:${queue}`]);
    const candidates = await client.query<{ id: string; group_key: string | null; now: string }>(
      `SELECT id, group_key, ${s}.ms_now() AS now FROM ${s}.jobs
       WHERE state = 'queued' AND pending_deps = 0 AND queue = $1 AND handler = ANY($2::text[])
       ORDER BY priority DESC, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED`,
      [queue, request.handlers, limit * 8],
    );
    if (candidates.rows.length === 0) return [];
    const groups = [...new Set(candidates.rows.map((r) => r.group_key).filter((g) => g !== null))];
    const running = new Map<string, number>();
    if (groups.length > 0 && limits.perGroup !== null) {
      const counts = await client.query<{ group_key: string; n: number }>(
        `SELECT group_key, count(*)::int AS n FROM ${s}.jobs
         WHERE state = 'running' AND queue = $1 AND group_key = ANY($2::text[]) GROUP BY group_key`,
        [queue, groups],
      );
      for (const row of counts.rows) running.set(row.group_key, row.n);
    }
    // The database's clock, as for started_at: every claimer agrees on the window.
    const window =
      limits.rate === null ? 0 : rateWindow(Number(candidates.rows[0]!.now), limits.rate.periodMs);
    const started = new Map<string, number>();
    if (groups.length > 0 && limits.rate !== null) {
      const counts = await client.query<{ group_key: string; starts: number }>(
        `SELECT group_key, starts FROM ${s}.group_rates
         WHERE queue = $1 AND group_key = ANY($2::text[]) AND window_no = $3`,
        [queue, groups, window],
      );
      for (const row of counts.rows) started.set(row.group_key, row.starts);
    }
    const picked: string[] = [];
    for (const row of candidates.rows) {
      if (picked.length >= limit) break;
      const group = row.group_key;
      if (group !== null && limits.perGroup !== null && (running.get(group) ?? 0) >= limits.perGroup)
        continue;
      if (group !== null && limits.rate !== null && (started.get(group) ?? 0) >= limits.rate.limit) continue;
      picked.push(row.id);
      if (group === null) continue;
      running.set(group, (running.get(group) ?? 0) + 1);
      started.set(group, (started.get(group) ?? 0) + 1);
    }
    if (picked.length === 0) return [];
    const claimed = (await client.query<PgClaimedRow>(claimIds, [request.workerId, request.leaseMs, picked]))
      .rows;
    if (limits.rate !== null) await countStarts(client, queue, claimed, window);
    return claimed;
  }

  /** Adds the claimed jobs' starts to their groups' counts in this window. */
  async function countStarts(
    client: Client,
    queue: string,
    claimed: readonly PgClaimedRow[],
    window: number,
  ) {
    const perGroup = new Map<string, number>();
    for (const row of claimed) {
      if (row.group_key !== null) perGroup.set(row.group_key, (perGroup.get(row.group_key) ?? 0) + 1);
    }
    if (perGroup.size === 0) return;
    await client.query(
      `INSERT INTO ${s}.group_rates AS r (queue, group_key, window_no, starts)
       SELECT $1, g, $2, n FROM unnest($3::text[], $4::int[]) AS x(g, n)
       ON CONFLICT (queue, group_key) DO UPDATE SET
         starts = CASE WHEN r.window_no = excluded.window_no THEN r.starts + excluded.starts ELSE excluded.starts END,
         window_no = excluded.window_no`,
      [queue, window, [...perGroup.keys()], [...perGroup.values()]],
    );
  }

  return async function claim(client: Client, request: ClaimRequest, outbox: Outbox): Promise<ClaimedJob[]> {
    if (request.handlers.length === 0 || request.limit <= 0) return [];
    // Due scheduled jobs become queued; other workers hear of it through the outbox.
    const promoted = await client.query<{ queue: string }>(
      `UPDATE ${s}.jobs SET state = 'queued' WHERE id IN (
         SELECT id FROM ${s}.jobs WHERE state = 'scheduled' AND run_at <= ${s}.ms_now()
         ORDER BY run_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
       RETURNING queue`,
    );
    for (const row of promoted.rows) outbox.queues.add(row.queue);
    const settings = new Map(
      (
        await client.query<QueueRow>(`SELECT * FROM ${s}.queues WHERE name = ANY($1::text[])`, [
          request.queues,
        ])
      ).rows.map((q) => [q.name, toQueueInfo(q)]),
    );
    const out: ClaimedJob[] = [];
    for (const queue of request.queues) {
      const remaining = request.limit - out.length;
      if (remaining <= 0) break;
      const setting = settings.get(queue);
      if (setting?.paused) continue;
      const rows =
        setting !== undefined && (setting.groupConcurrency !== null || setting.groupRate !== null)
          ? await claimWithGroups(client, request, queue, remaining, {
              perGroup: setting.groupConcurrency,
              rate: setting.groupRate,
            })
          : (
              await client.query<PgClaimedRow>(claimBatch, [
                request.workerId,
                request.leaseMs,
                queue,
                request.handlers,
                remaining,
              ])
            ).rows;
      rows.sort(byClaimOrder);
      for (const row of rows) {
        out.push(toPgClaimedJob(row));
        // Watchers see "running" now, not at their next poll.
        outbox.changed.push(row.id);
      }
    }
    return out;
  };
}

/** Lease renewal, progress, and what the rescuer reads. */
export function makeLeases(s: string) {
  async function heartbeat(
    client: Client,
    worker: WorkerInfo,
    leases: readonly LeaseRef[],
    leaseMs: number,
  ): Promise<HeartbeatResult> {
    await client.query(
      `INSERT INTO ${s}.workers (id, name, host, pid, queues, running, started_at, last_heartbeat_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, ${s}.ms_now())
       ON CONFLICT (id) DO UPDATE SET running = excluded.running, last_heartbeat_at = excluded.last_heartbeat_at`,
      [
        worker.id,
        worker.name,
        worker.host,
        worker.pid,
        JSON.stringify(worker.queues),
        worker.running,
        worker.startedAt,
      ],
    );
    const renewed = new Set<string>();
    if (leases.length > 0) {
      const rows = await client.query<{ id: string }>(
        `UPDATE ${s}.jobs j SET lease_expires_at = ${s}.ms_now() + $3
         FROM unnest($1::uuid[], $2::bigint[]) AS x(id, fence)
         WHERE j.id = x.id AND j.fence = x.fence AND j.state = 'running'
         RETURNING j.id`,
        [leases.map((l) => l.id), leases.map((l) => l.fence), leaseMs],
      );
      for (const row of rows.rows) renewed.add(row.id);
    }
    const cancels = await client.query<{ id: string; grace_left_ms: number }>(
      `SELECT id, greatest(0, coalesce(cancel_deadline, 0) - ${s}.ms_now()) AS grace_left_ms FROM ${s}.jobs
       WHERE worker_id = $1 AND state = 'running' AND cancel_requested`,
      [worker.id],
    );
    return {
      lost: leases.filter((l) => !renewed.has(l.id)).map((l) => l.id),
      cancelRequested: cancels.rows.map((r) => ({ id: r.id, graceLeftMs: r.grace_left_ms })),
    };
  }

  return {
    heartbeat,
    expiredSql: `SELECT id, fence, attempts, max_attempts, cancel_requested, policy, error FROM ${s}.jobs
      WHERE state = 'running'
        AND (lease_expires_at < ${s}.ms_now() OR (cancel_requested AND cancel_deadline < ${s}.ms_now() - 2000))
      FOR UPDATE SKIP LOCKED`,
    anyExpiredSql: `SELECT EXISTS (SELECT 1 FROM ${s}.jobs WHERE state = 'running'
        AND (lease_expires_at < ${s}.ms_now() OR (cancel_requested AND cancel_deadline < ${s}.ms_now() - 2000)))
      OR EXISTS (SELECT 1 FROM ${s}.workers WHERE last_heartbeat_at < ${s}.ms_now() - $1) AS any`,
  };
}
