/**
 * How a job record changes at each step, as pure functions of (record, input, now). The NATS store
 * writes each result with one compare-and-set. What finishing decides is the rule every store
 * shares (../finish-rules.ts); this file only lays it onto a NATS record.
 */
import { decideFinish, retentionEnd as keepUntil } from "../finish-rules.js";
import { dependencyFailed } from "../rescue.js";
import type { CounterDelta } from "../stats.js";
import type { Outcome } from "../store.js";
import type { StoredJob } from "./job-codec.js";

export const retentionEnd = (job: StoredJob, now: number): number =>
  keepUntil({ detached: job.detached, resultTtlMs: job.policy.resultTtlMs }, now);

export const isWaiting = (job: StoredJob): boolean => job.state === "queued" || job.state === "scheduled";

export function claimed(job: StoredJob, workerId: string, leaseMs: number, now: number): StoredJob {
  return {
    ...job,
    state: "running",
    attempts: job.attempts + 1,
    fence: job.fence + 1,
    workerId,
    startedAt: now,
    leaseExpiresAt: now + leaseMs,
    progress: null,
  };
}

export interface Applied {
  readonly next: StoredJob;
  readonly counts: CounterDelta;
  /** Finished for good: tell its children (true: it completed). */
  readonly finished?: { readonly succeeded: boolean };
}

/** The record after `outcome`, or undefined when the outcome is fenced off (not the holder). */
export function applyOutcome(job: StoredJob, outcome: Outcome, now: number): Applied | undefined {
  if (job.state !== "running" || job.fence !== outcome.fence) return undefined;
  const decision = decideFinish(
    {
      attempts: job.attempts,
      cancelRequested: job.cancelRequested,
      detached: job.detached,
      resultTtlMs: job.policy.resultTtlMs,
      startedAt: job.startedAt,
    },
    outcome,
    now,
  );
  const released = { workerId: null, leaseExpiresAt: null };
  switch (decision.state) {
    case "completed":
      return {
        next: {
          ...job,
          ...released,
          state: "completed",
          finishedAt: decision.finishedAt,
          error: null,
          cancelDeadline: null,
          progress: 1,
          result: decision.result,
          expiresAt: decision.expiresAt,
        },
        counts: decision.counts,
        finished: { succeeded: true },
      };
    case "failed":
    case "cancelled":
      return {
        next: {
          ...job,
          ...released,
          state: decision.state,
          finishedAt: decision.finishedAt,
          result: null,
          error: decision.error,
          cancelDeadline: null,
          expiresAt: decision.expiresAt,
        },
        counts: decision.counts,
        finished: { succeeded: false },
      };
    default:
      return {
        next: {
          ...job,
          ...released,
          state: decision.state,
          runAt: decision.runAt,
          error: decision.error ?? job.error,
          attempts: decision.refund ? job.attempts - 1 : job.attempts,
        },
        counts: decision.counts,
      };
  }
}

/** A waiting child whose parent finished: one parent fewer to wait for, or failed with it. */
export function parentFinished(
  child: StoredJob,
  parentId: string,
  succeeded: boolean,
  now: number,
): StoredJob | undefined {
  if (!isWaiting(child)) return undefined;
  if (succeeded) return { ...child, pendingDeps: Math.max(0, child.pendingDeps - 1) };
  return {
    ...child,
    state: "failed",
    error: dependencyFailed(parentId),
    finishedAt: now,
    expiresAt: retentionEnd(child, now),
  };
}
