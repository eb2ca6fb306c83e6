import { DEFAULT_POLICY } from "../../core/options.js";
import { addCounts, completedCounts, DETACHED_KEEP_MS, decideFinish } from "../finish-rules.js";
import { parsePolicy } from "../policy-text.js";
import { dependencyFailed } from "../rescue.js";
import { type CounterDelta, noCounts } from "../stats.js";
import type { Outcome } from "../store.js";
import type { Client } from "./connection.js";
import { bumpCounters } from "./enqueue.js";
import type { Outbox } from "./notifier.js";
import { toBuffer } from "./plain-insert.js";

/** Recording how attempts ended, and the dependency cascade that follows, in the caller's transaction. */
export function makeFinish(s: string) {
  /** Parents done: children waiting on them have one parent fewer (or fail with a failed parent). */
  async function cascade(client: Client, id: string, succeeded: boolean, outbox: Outbox): Promise<void> {
    if (succeeded) {
      const ready = await client.query<{ queue: string }>(
        `UPDATE ${s}.jobs SET pending_deps = pending_deps - 1
         WHERE id IN (SELECT child FROM ${s}.job_deps WHERE parent = $1) AND state IN ('scheduled', 'queued')
         RETURNING queue`,
        [id],
      );
      for (const row of ready.rows) outbox.queues.add(row.queue);
      return;
    }
    const error = dependencyFailed(id);
    // Level by level, each a new statement (a new snapshot): a child linked while this
    // transaction waited on a row lock is seen at the next level, not missed.
    let parents = [id];
    let total = 0;
    while (parents.length > 0) {
      const failed = await client.query<{ id: string }>(
        `UPDATE ${s}.jobs SET state = 'failed', error = $2, finished_at = ${s}.ms_now(),
           expires_at = ${s}.ms_now() + coalesce((policy::jsonb ->> 'resultTtlMs')::bigint, $3)
         WHERE id IN (SELECT child FROM ${s}.job_deps WHERE parent = ANY($1::uuid[]))
           AND state IN ('scheduled', 'queued')
         RETURNING id`,
        [parents, JSON.stringify(error), DEFAULT_POLICY.resultTtlMs],
      );
      parents = failed.rows.map((row) => row.id);
      for (const child of parents) outbox.changed.push(child);
      total += parents.length;
    }
    await bumpCounters(client, s, { failed: total });
  }

  /** All completions in one statement: fencing is per row (id, fence, still running). */
  async function completeAll(
    client: Client,
    done: readonly Extract<Outcome, { kind: "completed" }>[],
    counts: Required<CounterDelta>,
    outbox: Outbox,
  ): Promise<Set<string>> {
    const rows = await client.query<{ id: string; has_dependents: boolean; started_at: number; now: number }>(
      `UPDATE ${s}.jobs j SET state = 'completed', finished_at = c.n, error = NULL, worker_id = NULL,
         lease_expires_at = NULL, cancel_deadline = NULL, progress = 1,
         result = CASE WHEN j.detached THEN NULL ELSE x.result END,
         expires_at = c.n + least(coalesce((j.policy::jsonb ->> 'resultTtlMs')::bigint, $4),
                                  CASE WHEN j.detached THEN ${DETACHED_KEEP_MS} ELSE 9007199254740991 END)
       FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS x(id, fence, result), (SELECT ${s}.ms_now() AS n) AS c
       WHERE j.id = x.id AND j.fence = x.fence AND j.state = 'running'
       RETURNING j.id, j.has_dependents, j.started_at, c.n AS now`,
      [
        done.map((o) => o.id),
        done.map((o) => o.fence),
        done.map((o) => toBuffer(o.result)),
        DEFAULT_POLICY.resultTtlMs,
      ],
    );
    const applied = new Set<string>();
    for (const row of rows.rows) {
      applied.add(row.id);
      outbox.changed.push(row.id);
      addCounts(counts, completedCounts(row.started_at, row.now));
      if (row.has_dependents) await cascade(client, row.id, true, outbox);
    }
    return applied;
  }

  async function finishOther(
    client: Client,
    outcome: Exclude<Outcome, { kind: "completed" }>,
    counts: Required<CounterDelta>,
    outbox: Outbox,
  ): Promise<boolean> {
    // ms_now() is the transaction's start, so `now` is the time the statements below would write.
    const held = await client.query<{
      cancel_requested: boolean;
      has_dependents: boolean;
      detached: boolean;
      attempts: number;
      started_at: number | null;
      policy: string | null;
      queue: string;
      now: number;
    }>(
      `SELECT cancel_requested, has_dependents, detached, attempts, started_at, policy, queue, ${s}.ms_now() AS now
       FROM ${s}.jobs WHERE id = $1 AND fence = $2 AND state = 'running' FOR UPDATE`,
      [outcome.id, outcome.fence],
    );
    const row = held.rows[0];
    if (row === undefined) return false;
    outbox.changed.push(outcome.id);
    const decision = decideFinish(
      {
        attempts: row.attempts,
        cancelRequested: row.cancel_requested,
        detached: row.detached,
        resultTtlMs: parsePolicy(row.policy).resultTtlMs,
        startedAt: row.started_at,
      },
      outcome,
      row.now,
    );
    addCounts(counts, decision.counts);
    switch (decision.state) {
      case "failed":
      case "cancelled":
        await client.query(
          `UPDATE ${s}.jobs SET state = $1, finished_at = $2, result = NULL, error = $3, worker_id = NULL,
             lease_expires_at = NULL, cancel_deadline = NULL, expires_at = $4
           WHERE id = $5`,
          [
            decision.state,
            decision.finishedAt,
            JSON.stringify(decision.error),
            decision.expiresAt,
            outcome.id,
          ],
        );
        if (row.has_dependents) await cascade(client, outcome.id, false, outbox);
        return true;
      default:
        await client.query(
          `UPDATE ${s}.jobs SET state = $1, run_at = $2, error = coalesce($3, error),
             attempts = attempts - $4, worker_id = NULL, lease_expires_at = NULL
           WHERE id = $5`,
          [
            decision.state,
            decision.runAt,
            decision.error === null ? null : JSON.stringify(decision.error),
            decision.refund ? 1 : 0,
            outcome.id,
          ],
        );
        outbox.queues.add(row.queue);
        return true;
    }
  }

  async function finish(client: Client, outcomes: readonly Outcome[], outbox: Outbox): Promise<boolean[]> {
    const counts = noCounts();
    const done = outcomes.filter((o): o is Extract<Outcome, { kind: "completed" }> => o.kind === "completed");
    const completed = done.length === 0 ? new Set<string>() : await completeAll(client, done, counts, outbox);
    const applied: boolean[] = [];
    for (const outcome of outcomes) {
      if (outcome.kind === "completed") applied.push(completed.has(outcome.id));
      else applied.push(await finishOther(client, outcome, counts, outbox));
    }
    await bumpCounters(client, s, counts);
    return applied;
  }

  return { finish, cascade };
}
