import { ErrorCode } from "../core/errors.js";
import type { ErrorInfo } from "../core/job.js";
import { retryDelay } from "../core/retry.js";
import { parsePolicy } from "./policy-text.js";
import type { Outcome } from "./store.js";

/** Error code of a job failed because a job it depends on failed or was cancelled. */
export const DEPENDENCY_FAILED = "FERRY_DEPENDENCY_FAILED";

export const dependencyFailed = (parentId: string): ErrorInfo => ({
  code: DEPENDENCY_FAILED,
  message: `a job it depends on (${parentId}) failed or was cancelled`,
  retryable: false,
  attempt: 0,
});

/** How a job cancelled by its owner (or before it ever ran) is recorded. */
export const cancelledError = (attempt: number, message = "cancelled"): ErrorInfo => ({
  code: ErrorCode.Cancelled,
  message,
  retryable: false,
  attempt,
});

/** A child's parents as stored: how many it still waits for, and a failed one if any (it then fails). */
export function tallyParents(parents: Iterable<{ readonly id: string; readonly state: string }>): {
  pending: number;
  failedParent: string | undefined;
} {
  let pending = 0;
  let failedParent: string | undefined;
  for (const parent of parents) {
    if (parent.state === "failed" || parent.state === "cancelled") failedParent = parent.id;
    else if (parent.state !== "completed") pending += 1;
  }
  return { pending, failedParent };
}

/** A running job whose lease ran out (or whose cancel grace passed), as every store reads it. */
export interface ExpiredAttempt {
  readonly id: string;
  readonly fence: number;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly cancelRequested: boolean;
  readonly policy: string | null;
  /** The error the job keeps from its attempts so far (JSON text in the SQL stores), if any. */
  readonly lastError: ErrorInfo | string | null;
}

/**
 * Rescues in a row after which a job is failed whatever attempts it has left: a job whose attempts
 * keep ending with its worker's death (a handler that kills the process running it, or exhausts
 * its memory) must not take down every process that claims it, one after the other, for ever.
 */
export const MAX_LEASE_LOSSES_IN_A_ROW = 3;
/** The ErrorInfo field counting an attempt's lease losses in a row. */
const LEASE_LOSSES = "leaseLosses";

/** How many attempts in a row, this one included, ended with their lease lost. */
function leaseLossesInARow(lastError: ErrorInfo | string | null): number {
  let previous: ErrorInfo | null = null;
  try {
    previous = typeof lastError === "string" ? (JSON.parse(lastError) as ErrorInfo) : lastError;
  } catch {
    previous = null;
  }
  const counted = Number(previous?.fields?.[LEASE_LOSSES]);
  // A snooze between attempts keeps the error; any other ending of an attempt replaces it.
  return previous?.code === ErrorCode.HandlerCrashed && Number.isSafeInteger(counted) && counted > 0
    ? counted + 1
    : 1;
}

export type RescueTally = { requeued: number; failed: number; cancelled: number };

/**
 * What the rescuer records for an attempt whose worker vanished: cancelled if a cancel was asked,
 * else the same rules a worker applies to a thrown error (attempts, retryOn/ignoreOn, backoff),
 * and failed at the MAX_LEASE_LOSSES_IN_A_ROW-th rescue in a row whatever attempts are left. The
 * rescued attempt stays counted. Shared by every store, so a rescue means the same everywhere.
 */
export function rescueOutcome(row: ExpiredAttempt, tally: RescueTally): Outcome {
  if (row.cancelRequested) {
    tally.cancelled += 1;
    const error = cancelledError(row.attempts, "cancelled (forced after the grace period)");
    return { kind: "cancelled", id: row.id, fence: row.fence, error };
  }
  const losses = leaseLossesInARow(row.lastError);
  const stop = losses >= MAX_LEASE_LOSSES_IN_A_ROW;
  const error: ErrorInfo = {
    code: ErrorCode.HandlerCrashed,
    message: stop
      ? `the worker running this job stopped renewing its lease ${losses} attempts in a row (crashed, ` +
        "killed or stalled): not retried again"
      : "the worker running this attempt stopped renewing its lease (crashed, killed or stalled)",
    retryable: true,
    attempt: row.attempts,
    fields: { [LEASE_LOSSES]: String(losses) },
  };
  const facts = { attempt: row.attempts, maxAttempts: row.maxAttempts, policy: parsePolicy(row.policy) };
  const delayMs = stop ? undefined : retryDelay(facts, error);
  if (delayMs === undefined) {
    tally.failed += 1;
    return {
      kind: "failed",
      id: row.id,
      fence: row.fence,
      error: { ...error, retryable: false },
      timedOut: false,
    };
  }
  tally.requeued += 1;
  return { kind: "retry", id: row.id, fence: row.fence, error, delayMs, timedOut: false };
}
