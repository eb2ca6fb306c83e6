import { backoffDelay } from "../core/backoff.js";
import { toErrorInfo } from "../core/error-info.js";
import { ErrorCode } from "../core/errors.js";
import type { ErrorInfo } from "../core/job.js";
import type { ClaimedJob, Outcome } from "../store/store.js";
import { HandlerControl } from "./control.js";

/** Whether a failed attempt may run again, by the job's retryOn / ignoreOn rules. */
export function mayRetry(job: ClaimedJob, error: ErrorInfo): boolean {
  if (!error.retryable || job.attempt >= job.maxAttempts) return false;
  const { retryOn, ignoreOn } = job.policy;
  if (ignoreOn?.includes(error.code)) return false;
  if (retryOn !== null && !retryOn.includes(error.code)) return false;
  return true;
}

/** Turns an attempt's failure into the outcome the store records. */
export function failureOutcome(
  job: ClaimedJob,
  thrown: unknown,
  overrides: { code?: string; timedOut?: boolean } = {},
): Outcome {
  const base = { id: job.id, fence: job.fence };
  if (thrown instanceof HandlerControl) {
    switch (thrown.action) {
      case "snooze":
        return { ...base, kind: "snooze", delayMs: thrown.delayMs };
      case "cancel":
        return {
          ...base,
          kind: "cancelled",
          error: toErrorInfo(thrown.reason, {
            attempt: job.attempt,
            code: ErrorCode.Cancelled,
            retryable: false,
          }),
        };
      case "discard":
        return {
          ...base,
          kind: "failed",
          error: toErrorInfo(thrown.reason, {
            attempt: job.attempt,
            code: "FERRY_DISCARDED",
            retryable: false,
          }),
          timedOut: false,
        };
    }
  }
  const error = toErrorInfo(thrown, {
    attempt: job.attempt,
    ...(overrides.code === undefined ? {} : { code: overrides.code }),
  });
  const timedOut = overrides.timedOut ?? false;
  if (mayRetry(job, error)) {
    return {
      ...base,
      kind: "retry",
      error,
      delayMs: backoffDelay(job.policy.backoff, job.attempt),
      timedOut,
    };
  }
  return { ...base, kind: "failed", error: { ...error, retryable: false }, timedOut };
}
