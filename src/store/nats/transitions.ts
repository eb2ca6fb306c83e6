/**
 * How a job record changes at each step, as pure functions of (record, input, now). The NATS store
 * writes each result with one compare-and-set; the rules are the SQL stores' (sqlite/finish.ts),
 * kept here in one place so that the two kinds of store read the same.
 */
import { DETACHED_KEEP_MS } from "../../core/defaults.js";
import type { ErrorInfo } from "../../core/job.js";
import { cancelledError, dependencyFailed } from "../rescue.js";
import type { CounterDelta } from "../stats.js";
import type { Outcome } from "../store.js";
import type { StoredJob } from "./job-codec.js";

export const retentionEnd = (job: StoredJob, now: number): number =>
  now + (job.detached ? Math.min(job.policy.resultTtlMs, DETACHED_KEEP_MS) : job.policy.resultTtlMs);

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
  const released = { workerId: null, leaseExpiresAt: null };
  if (outcome.kind === "completed") {
    return {
      next: {
        ...job,
        ...released,
        state: "completed",
        finishedAt: now,
        error: null,
        cancelDeadline: null,
        progress: 1,
        result: job.detached ? null : outcome.result,
        expiresAt: retentionEnd(job, now),
      },
      counts: { completed: 1, run_count: 1, run_ms_total: Math.max(0, now - (job.startedAt ?? now)) },
      finished: { succeeded: true },
    };
  }
  let kind = outcome.kind;
  // A cancel requested while it ran wins over a retry or snooze: the owner asked it to stop.
  if (job.cancelRequested && (kind === "retry" || kind === "snooze" || kind === "release"))
    kind = "cancelled";
  if (kind === "failed" || kind === "cancelled") {
    const error: ErrorInfo =
      "error" in outcome && (outcome.kind === kind || kind === "failed")
        ? outcome.error
        : cancelledError(job.attempts);
    const timedOut = "timedOut" in outcome && outcome.timedOut;
    return {
      next: {
        ...job,
        ...released,
        state: kind,
        finishedAt: now,
        result: null,
        error,
        cancelDeadline: null,
        expiresAt: retentionEnd(job, now),
      },
      counts: { [kind === "failed" ? "failed" : "cancelled"]: 1, ...(timedOut ? { timed_out: 1 } : {}) },
      finished: { succeeded: false },
    };
  }
  const delayMs = "delayMs" in outcome ? outcome.delayMs : 0;
  return {
    next: {
      ...job,
      ...released,
      state: delayMs > 0 ? "scheduled" : "queued",
      runAt: now + delayMs,
      error: outcome.kind === "retry" ? outcome.error : job.error,
      attempts: kind === "retry" ? job.attempts : job.attempts - 1,
    },
    counts: outcome.kind === "retry" && outcome.timedOut ? { timed_out: 1 } : {},
  };
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
