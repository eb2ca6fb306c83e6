import { invalidArgument } from "../../core/errors.js";
import { makePolicyText } from "../policy-text.js";
import { dependencyFailed, tallyParents } from "../rescue.js";
import type { CounterDelta } from "../stats.js";
import type { EnqueueResult, NewJob } from "../store.js";
import { checkParent, UNIQUE_SCOPE_SQL } from "../tenancy.js";
import type { Client } from "./connection.js";
import type { Outbox } from "./notifier.js";
import { insertPlainJobs, plainJobArrays, toBuffer } from "./plain-insert.js";

/**
 * Adds to the lifetime counters in the caller's transaction. Rows are sharded and always locked
 * in name order, so concurrent workers neither queue on one row nor deadlock on two.
 */
export async function bumpCounters(client: Client, s: string, delta: CounterDelta): Promise<void> {
  const entries = Object.entries(delta)
    .filter(([, value]) => value)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  if (entries.length === 0) return;
  await client.query(
    `INSERT INTO ${s}.counters (name, shard, value)
     SELECT name, $3, value FROM unnest($1::text[], $2::bigint[]) AS d(name, value)
     ON CONFLICT (name, shard) DO UPDATE SET value = counters.value + excluded.value`,
    [entries.map(([name]) => name), entries.map(([, value]) => value), Math.floor(Math.random() * 16)],
  );
}

const COLUMNS = `id, handler, queue, state, priority, owner, label, group_key, unique_key, serializer,
  payload, cookie_hash, max_attempts, policy, launched_at, run_at, detached, pending_deps`;

/**
 * Inserts jobs in the caller's transaction. Plain jobs go in one multi-row statement; jobs with a
 * uniqueKey or dependencies one at a time, since each needs a look at other rows first.
 */
export function makeEnqueue(s: string) {
  const policyText = makePolicyText();

  async function insertPlain(client: Client, jobs: readonly NewJob[]): Promise<void> {
    await client.query(
      insertPlainJobs(s, `(SELECT ${s}.ms_now() AS n) AS c`),
      plainJobArrays(jobs, policyText),
    );
  }

  /** Counts unfinished parents (locking them, so none finishes unseen); a failed one fails the child. */
  async function checkParents(client: Client, job: NewJob) {
    const rows = await client.query<{ id: string; state: string; owner: string | null }>(
      `SELECT id, state, owner FROM ${s}.jobs WHERE id = ANY($1::uuid[]) FOR SHARE`,
      [job.dependsOn],
    );
    const found = new Map(rows.rows.map((row) => [row.id, row]));
    for (const id of job.dependsOn) checkParent(job, found.get(id));
    return tallyParents(rows.rows);
  }

  async function insertOne(client: Client, job: NewJob): Promise<EnqueueResult> {
    const { pending, failedParent } =
      job.dependsOn.length === 0 ? { pending: 0, failedParent: undefined } : await checkParents(client, job);
    const inserted = await client.query(
      `INSERT INTO ${s}.jobs (${COLUMNS})
       SELECT $1::uuid, $2::text, $3::text,
         CASE WHEN coalesce($16::bigint, n + $15::bigint) > n THEN 'scheduled' ELSE 'queued' END,
         $4::int, $5::text, $6::text, $7::text, $8::text, $9::text, $10::bytea, $11::bytea, $12::int, $13::text, n,
         coalesce($16::bigint, n + $15::bigint), $14::boolean, $17::int
       FROM (SELECT ${s}.ms_now() AS n) AS clock
       ON CONFLICT ((${UNIQUE_SCOPE_SQL}), unique_key)
         WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running')
       DO NOTHING RETURNING id`,
      [
        job.id,
        job.handler,
        job.queue,
        job.priority,
        job.owner,
        job.label,
        job.group,
        job.uniqueKey,
        job.serializer,
        toBuffer(job.payload),
        toBuffer(job.cookieHash),
        job.maxAttempts,
        policyText(job.policy),
        job.detached,
        job.delayMs,
        job.runAt,
        pending,
      ],
    );
    if (inserted.rowCount === 0) {
      const twin = await client.query<{ id: string }>(
        `SELECT id FROM ${s}.jobs WHERE ${UNIQUE_SCOPE_SQL} = coalesce($2::text, '') AND unique_key = $1
           AND state IN ('scheduled', 'queued', 'running')`,
        [job.uniqueKey, job.owner],
      );
      const id = twin.rows[0]?.id;
      if (id === undefined) throw invalidArgument("job could not be stored");
      return { id, deduplicated: true };
    }
    if (job.dependsOn.length > 0) {
      await client.query(
        `INSERT INTO ${s}.job_deps (parent, child) SELECT p, $2 FROM unnest($1::uuid[]) AS p ON CONFLICT DO NOTHING`,
        [job.dependsOn, job.id],
      );
      await client.query(
        `UPDATE ${s}.jobs SET has_dependents = true WHERE id = ANY($1::uuid[]) AND NOT has_dependents`,
        [job.dependsOn],
      );
    }
    if (failedParent !== undefined) {
      const error = dependencyFailed(failedParent);
      await client.query(
        `UPDATE ${s}.jobs SET state = 'failed', error = $1, finished_at = ${s}.ms_now(),
           expires_at = ${s}.ms_now() + $2 WHERE id = $3`,
        [JSON.stringify(error), job.policy.resultTtlMs, job.id],
      );
      return { id: job.id, deduplicated: false, failedAtOnce: true } as EnqueueResult;
    }
    return { id: job.id, deduplicated: false };
  }

  return async function enqueue(
    client: Client,
    jobs: readonly NewJob[],
    outbox: Outbox,
  ): Promise<EnqueueResult[]> {
    const plain = jobs.filter((j) => j.uniqueKey === null && j.dependsOn.length === 0);
    if (plain.length > 0) await insertPlain(client, plain);
    const results: EnqueueResult[] = [];
    let launched = 0;
    let failed = 0;
    for (const job of jobs) {
      const result =
        job.uniqueKey === null && job.dependsOn.length === 0
          ? { id: job.id, deduplicated: false }
          : await insertOne(client, job);
      if ((result as { failedAtOnce?: boolean }).failedAtOnce) {
        failed += 1;
        results.push({ id: result.id, deduplicated: false });
      } else results.push(result);
      if (!result.deduplicated) {
        launched += 1;
        outbox.queues.add(job.queue);
      }
    }
    await bumpCounters(client, s, { launched, failed });
    return results;
  };
}
