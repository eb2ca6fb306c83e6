import { DETACHED_KEEP_MS } from "../../core/defaults.js";
import type { ErrorInfo } from "../../core/job.js";
import { DEFAULT_POLICY } from "../../core/options.js";
import { parsePolicy } from "../policy-text.js";
import { cancelledError, dependencyFailed } from "../rescue.js";
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
    const rows = await client.query<{ id: string; has_dependents: boolean; run_ms: number }>(
      `UPDATE ${s}.jobs j SET state = 'completed', finished_at = c.n, error = NULL, worker_id = NULL,
         lease_expires_at = NULL, cancel_deadline = NULL, progress = 1,
         result = CASE WHEN j.detached THEN NULL ELSE x.result END,
         expires_at = c.n + least(coalesce((j.policy::jsonb ->> 'resultTtlMs')::bigint, $4),
                                  CASE WHEN j.detached THEN 3600000 ELSE 9007199254740991 END)
       FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS x(id, fence, result), (SELECT ${s}.ms_now() AS n) AS c
       WHERE j.id = x.id AND j.fence = x.fence AND j.state = 'running'
       RETURNING j.id, j.has_dependents, greatest(0, c.n - j.started_at) AS run_ms`,
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
      counts.completed += 1;
      counts.run_ms_total += row.run_ms;
      counts.run_count += 1;
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
    const held = await client.query<{
      cancel_requested: boolean;
      has_dependents: boolean;
      detached: boolean;
      attempts: number;
      policy: string | null;
      queue: string;
    }>(
      `SELECT cancel_requested, has_dependents, detached, attempts, policy, queue FROM ${s}.jobs
       WHERE id = $1 AND fence = $2 AND state = 'running' FOR UPDATE`,
      [outcome.id, outcome.fence],
    );
    const row = held.rows[0];
    if (row === undefined) return false;
    outbox.changed.push(outcome.id);
    let kind = outcome.kind;
    // A cancel requested while it ran wins over a retry or snooze: the owner asked it to stop.
    if (row.cancel_requested && (kind === "retry" || kind === "snooze" || kind === "release"))
      kind = "cancelled";
    if (kind === "failed" || kind === "cancelled") {
      const error: ErrorInfo =
        "error" in outcome && (outcome.kind === kind || kind === "failed")
          ? outcome.error
          : cancelledError(row.attempts);
      const ttl = parsePolicy(row.policy).resultTtlMs;
      // Nobody can collect a detached job's result: keep the row an hour for listing, no longer.
      const keepMs = row.detached ? Math.min(ttl, DETACHED_KEEP_MS) : ttl;
      await client.query(
        `UPDATE ${s}.jobs SET state = $1, finished_at = ${s}.ms_now(), result = NULL, error = $2, worker_id = NULL,
           lease_expires_at = NULL, cancel_deadline = NULL, expires_at = ${s}.ms_now() + $3
         WHERE id = $4`,
        [kind, JSON.stringify(error), keepMs, outcome.id],
      );
      if (kind === "failed") counts.failed += 1;
      else counts.cancelled += 1;
      if ("timedOut" in outcome && outcome.timedOut) counts.timed_out += 1;
      if (row.has_dependents) await cascade(client, outcome.id, false, outbox);
      return true;
    }
    const delayMs = "delayMs" in outcome ? outcome.delayMs : 0;
    if (outcome.kind === "retry" && outcome.timedOut) counts.timed_out += 1;
    await client.query(
      `UPDATE ${s}.jobs SET state = $1, run_at = ${s}.ms_now() + $2, error = coalesce($3, error),
         attempts = attempts - $4, worker_id = NULL, lease_expires_at = NULL
       WHERE id = $5`,
      [
        delayMs > 0 ? "scheduled" : "queued",
        delayMs,
        outcome.kind === "retry" ? JSON.stringify(outcome.error) : null,
        kind === "retry" ? 0 : 1,
        outcome.id,
      ],
    );
    outbox.queues.add(row.queue);
    return true;
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
