/**
 * What recording an attempt's end does to a job, as pure functions of (held record, outcome, now).
 * The worker decides the outcome; these are the few rules the *store* still applies on top, the
 * same on every backend, so they live once here and the conformance suite judges one copy:
 * - a cancel requested while the job ran beats a retry, snooze or release;
 * - which error a finished job keeps (the outcome's own, or the cancellation's);
 * - a detached job's record is kept an hour at most, its result not at all;
 * - a retry keeps its attempt counted, a snooze or release refunds it.
 * Each store writes the answer its own way (SQL UPDATE, NATS compare-and-set). The SQL stores also
 * complete jobs in one set-based statement that reads nothing first; those statements spell the
 * retention rule in SQL with DETACHED_KEEP_MS.
 */
import { DETACHED_KEEP_MS } from "../core/defaults.js";
import type { ErrorInfo } from "../core/job.js";
import { cancelledError } from "./rescue.js";
import type { CounterDelta } from "./stats.js";
import type { Outcome } from "./store.js";

/** Nobody can collect a detached job's result: keep its record this long for listing, no longer. */
export { DETACHED_KEEP_MS } from "../core/defaults.js";

/** The facts of a record that the retention rule reads. */
export interface Retained {
  readonly detached: boolean;
  /** The job's policy `resultTtlMs`. */
  readonly resultTtlMs: number;
}

/** How long a job that finishes now is kept (its `expiresAt` is now plus this). */
export const keepMs = (job: Retained): number =>
  job.detached ? Math.min(job.resultTtlMs, DETACHED_KEEP_MS) : job.resultTtlMs;

/** When a job that finishes at `now` expires. */
export const retentionEnd = (job: Retained, now: number): number => now + keepMs(job);

/** The facts of the held (running, fence matched) record that finishing reads. */
export interface HeldAttempt extends Retained {
  readonly attempts: number;
  readonly cancelRequested: boolean;
  readonly startedAt: number | null;
}

/** The fields a finish writes, by where the job goes. */
export type FinishDecision =
  | {
      readonly state: "completed";
      readonly finishedAt: number;
      /** null for a detached job: its result is dropped at once. */
      readonly result: Uint8Array | null;
      readonly expiresAt: number;
      readonly counts: CounterDelta;
    }
  | {
      readonly state: "failed" | "cancelled";
      readonly finishedAt: number;
      readonly error: ErrorInfo;
      readonly expiresAt: number;
      readonly counts: CounterDelta;
    }
  | {
      /** Back to waiting: scheduled when delayed, else queued. */
      readonly state: "scheduled" | "queued";
      readonly runAt: number;
      /** The attempt's error to record; null keeps the error stored (a snooze or release). */
      readonly error: ErrorInfo | null;
      /** true: the attempt is given back (attempts - 1), as for a snooze or release. */
      readonly refund: boolean;
      readonly counts: CounterDelta;
    };

/** The counters a completion adds: one more completed run, of this many ms. */
export const completedCounts = (
  startedAt: number | null,
  now: number,
): Required<Pick<CounterDelta, "completed" | "run_count" | "run_ms_total">> => ({
  completed: 1,
  run_count: 1,
  run_ms_total: Math.max(0, now - (startedAt ?? now)),
});

/**
 * What a held attempt's `outcome` makes of the job at `now`. The caller has checked that the
 * outcome's fence holds the job (running, same fence); a fenced-off outcome changes nothing.
 */
export function decideFinish(
  job: HeldAttempt,
  outcome: Exclude<Outcome, { kind: "completed" }>,
  now: number,
): Exclude<FinishDecision, { state: "completed" }>;
export function decideFinish(job: HeldAttempt, outcome: Outcome, now: number): FinishDecision;
export function decideFinish(job: HeldAttempt, outcome: Outcome, now: number): FinishDecision {
  if (outcome.kind === "completed") {
    return {
      state: "completed",
      finishedAt: now,
      result: job.detached ? null : outcome.result,
      expiresAt: retentionEnd(job, now),
      counts: completedCounts(job.startedAt, now),
    };
  }
  let kind = outcome.kind;
  // A cancel requested while it ran wins over a retry or snooze: the owner asked it to stop.
  if (job.cancelRequested && (kind === "retry" || kind === "snooze" || kind === "release"))
    kind = "cancelled";
  if (kind === "failed" || kind === "cancelled") {
    // The outcome's own error when its kind is the one recorded; a retry, snooze or release turned
    // into a cancel records the cancellation instead.
    const error: ErrorInfo =
      "error" in outcome && (outcome.kind === kind || kind === "failed")
        ? outcome.error
        : cancelledError(job.attempts);
    const timedOut = "timedOut" in outcome && outcome.timedOut;
    return {
      state: kind,
      finishedAt: now,
      error,
      expiresAt: retentionEnd(job, now),
      counts: { [kind === "failed" ? "failed" : "cancelled"]: 1, ...(timedOut ? { timed_out: 1 } : {}) },
    };
  }
  const delayMs = "delayMs" in outcome ? outcome.delayMs : 0;
  return {
    state: delayMs > 0 ? "scheduled" : "queued",
    runAt: now + delayMs,
    error: outcome.kind === "retry" ? outcome.error : null,
    refund: kind !== "retry",
    counts: outcome.kind === "retry" && outcome.timedOut ? { timed_out: 1 } : {},
  };
}

/** Adds `delta` into an accumulator of a batch's counters. */
export function addCounts(into: Required<CounterDelta>, delta: CounterDelta): void {
  for (const [name, n] of Object.entries(delta) as [keyof CounterDelta, number][]) into[name] += n;
}
