import { invalidArgument } from "../../core/errors.js";
import type { ErrorInfo } from "../../core/job.js";
import type { EnqueueResult, NewJob } from "../store.js";
import type { Db } from "./connection.js";
import { bumpCounters } from "./counters.js";

export const DEPENDENCY_FAILED = "FERRY_DEPENDENCY_FAILED";

/** Inserts jobs inside an open write transaction. Returns one result per job, in order. */
export function makeEnqueue(db: Db) {
  const insert = db.prepare(`INSERT INTO jobs (id, handler, queue, state, priority, owner, label, group_key,
      unique_key, serializer, payload, cookie_hash, max_attempts, policy, launched_at, run_at, detached, pending_deps)
    VALUES (@id, @handler, @queue, @state, @priority, @owner, @label, @group, @uniqueKey, @serializer, @payload,
      @cookieHash, @maxAttempts, @policy, @now, @runAt, @detached, @pendingDeps)`);
  // A unique job that lost the race to an unfinished twin: INSERT OR IGNORE, then find the twin.
  const insertUnique = db.prepare(insert.source.replace("INSERT INTO", "INSERT OR IGNORE INTO"));
  const findUnique = db.prepare(
    "SELECT id FROM jobs WHERE unique_key = ? AND state IN ('scheduled', 'queued', 'running')",
  );
  const parentState = db.prepare("SELECT state FROM jobs WHERE id = ?");
  const linkParent = db.prepare("INSERT OR IGNORE INTO job_deps (parent, child) VALUES (?, ?)");
  const markParent = db.prepare("UPDATE jobs SET has_dependents = 1 WHERE id = ? AND has_dependents = 0");
  const failAtOnce = db.prepare(
    "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, expires_at = ? WHERE id = ?",
  );

  let lastPolicy: object | undefined;
  let lastPolicyText = "";
  const policyText = (policy: object): string => {
    // launchMany shares one policy object across jobs: stringify it once.
    if (policy !== lastPolicy) {
      lastPolicy = policy;
      lastPolicyText = JSON.stringify(policy);
    }
    return lastPolicyText;
  };

  return function enqueue(jobs: readonly NewJob[], now: number): EnqueueResult[] {
    const results: EnqueueResult[] = [];
    let launched = 0;
    for (const job of jobs) {
      const runAt = job.runAt ?? now + job.delayMs;
      let pendingDeps = 0;
      let failedParent: string | undefined;
      for (const parent of job.dependsOn) {
        const row = parentState.get(parent) as { state: string } | undefined;
        if (row === undefined) throw invalidArgument("dependsOn names a job that does not exist");
        if (row.state === "failed" || row.state === "cancelled") failedParent = parent;
        else if (row.state !== "completed") pendingDeps += 1;
      }
      const params = {
        id: job.id,
        handler: job.handler,
        queue: job.queue,
        state: runAt > now ? "scheduled" : "queued",
        priority: job.priority,
        owner: job.owner,
        label: job.label,
        group: job.group,
        uniqueKey: job.uniqueKey,
        serializer: job.serializer,
        payload: job.payload,
        cookieHash: job.cookieHash,
        maxAttempts: job.maxAttempts,
        policy: policyText(job.policy),
        now,
        runAt,
        detached: job.detached ? 1 : 0,
        pendingDeps,
      };
      if (job.uniqueKey !== null) {
        if (insertUnique.run(params).changes === 0) {
          const twin = findUnique.get(job.uniqueKey) as { id: string } | undefined;
          if (twin === undefined) throw invalidArgument("job could not be stored");
          results.push({ id: twin.id, deduplicated: true });
          continue;
        }
      } else {
        insert.run(params);
      }
      launched += 1;
      for (const parent of job.dependsOn) {
        linkParent.run(parent, job.id);
        markParent.run(parent);
      }
      if (failedParent !== undefined) {
        const error: ErrorInfo = {
          code: DEPENDENCY_FAILED,
          message: `a job it depends on (${failedParent}) failed or was cancelled`,
          retryable: false,
          attempt: 0,
        };
        failAtOnce.run(JSON.stringify(error), now, now + job.policy.resultTtlMs, job.id);
      }
      results.push({ id: job.id, deduplicated: false });
    }
    bumpCounters(db, { launched });
    return results;
  };
}
