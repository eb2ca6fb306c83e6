import { invalidArgument } from "../../core/errors.js";
import { makePolicyText } from "../policy-text.js";
import { dependencyFailed, tallyParents } from "../rescue.js";
import type { EnqueueResult, NewJob } from "../store.js";
import { checkParent, UNIQUE_SCOPE_SQL } from "../tenancy.js";
import type { Db, Stmt } from "./connection.js";
import { bumpCounters } from "./counters.js";

const INSERT = `INSERT INTO jobs (id, handler, queue, state, priority, owner, label, group_key, unique_key, serializer,
    payload, cookie_hash, max_attempts, policy, launched_at, run_at, detached, pending_deps)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** Inserts jobs inside an open write transaction. Returns one result per job, in order. */
export function makeEnqueue(db: Db) {
  const insert = db.prepare<unknown[]>(INSERT);
  // A unique job that lost the race to an unfinished twin: INSERT OR IGNORE, then find the twin.
  const insertUnique = db.prepare<unknown[]>(INSERT.replace("INSERT INTO", "INSERT OR IGNORE INTO"));
  // The twin in the launching owner's scope only (the jobs_unique index is on the same pair).
  const findUnique = db.prepare(
    `SELECT id FROM jobs WHERE ${UNIQUE_SCOPE_SQL} = coalesce(?, '') AND unique_key = ?
       AND state IN ('scheduled', 'queued', 'running')`,
  );
  const parentOf = db.prepare("SELECT state, owner FROM jobs WHERE id = ?");
  const linkParent = db.prepare("INSERT OR IGNORE INTO job_deps (parent, child) VALUES (?, ?)");
  const markParent = db.prepare("UPDATE jobs SET has_dependents = 1 WHERE id = ? AND has_dependents = 0");
  const failAtOnce = db.prepare(
    "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, expires_at = ? WHERE id = ?",
  );

  const policyText = makePolicyText();

  /** Counts unfinished parents; answers a failed parent's id if any (the child then fails at once). */
  function checkParents(job: NewJob): { pending: number; failedParent: string | undefined } {
    const parents = job.dependsOn.map((id) => {
      const row = parentOf.get(id) as { state: string; owner: string | null } | undefined;
      checkParent(job, row);
      return { id, state: row!.state };
    });
    return tallyParents(parents);
  }

  function insertJob(statement: Stmt, job: NewJob, now: number, runAt: number, pending: number) {
    return statement.run(
      job.id,
      job.handler,
      job.queue,
      runAt > now ? "scheduled" : "queued",
      job.priority,
      job.owner,
      job.label,
      job.group,
      job.uniqueKey,
      job.serializer,
      job.payload,
      job.cookieHash,
      job.maxAttempts,
      policyText(job.policy),
      now,
      runAt,
      job.detached ? 1 : 0,
      pending,
    );
  }

  return function enqueue(jobs: readonly NewJob[], now: number): EnqueueResult[] {
    const results: EnqueueResult[] = [];
    let launched = 0;
    let failed = 0;
    for (const job of jobs) {
      const runAt = job.runAt ?? now + job.delayMs;
      const { pending, failedParent } =
        job.dependsOn.length === 0 ? { pending: 0, failedParent: undefined } : checkParents(job);
      if (job.uniqueKey !== null) {
        if (insertJob(insertUnique, job, now, runAt, pending).changes === 0) {
          const twin = findUnique.get(job.owner, job.uniqueKey) as { id: string } | undefined;
          if (twin === undefined) throw invalidArgument("job could not be stored");
          results.push({ id: twin.id, deduplicated: true });
          continue;
        }
      } else {
        insertJob(insert, job, now, runAt, pending);
      }
      launched += 1;
      for (const parent of job.dependsOn) {
        linkParent.run(parent, job.id);
        markParent.run(parent);
      }
      if (failedParent !== undefined) {
        const error = dependencyFailed(failedParent);
        failAtOnce.run(JSON.stringify(error), now, now + job.policy.resultTtlMs, job.id);
        failed += 1;
      }
      results.push({ id: job.id, deduplicated: false });
    }
    bumpCounters(db, { launched, failed });
    return results;
  };
}
