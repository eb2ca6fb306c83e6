import { toErrorInfo } from "../core/error-info.js";
import { ErrorCode } from "../core/errors.js";
import { retryDelay } from "../core/retry.js";
import type { ClaimedJob, Outcome } from "../store/store.js";
import { HandlerControl } from "./control.js";

/** Turns an attempt's failure into the outcome the store records. */
export function failureOutcome(
  job: ClaimedJob,
  thrown: unknown,
  overrides: { code?: string; timedOut?: boolean; errorMaxBytes?: number } = {},
): Outcome {
  const cut = overrides.errorMaxBytes === undefined ? {} : { maxBytes: overrides.errorMaxBytes };
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
            ...cut,
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
            ...cut,
            code: "FERRY_DISCARDED",
            retryable: false,
          }),
          timedOut: false,
        };
    }
  }
  const error = toErrorInfo(thrown, {
    attempt: job.attempt,
    ...cut,
    ...(overrides.code === undefined ? {} : { code: overrides.code }),
  });
  const timedOut = overrides.timedOut ?? false;
  const delayMs = retryDelay(job, error);
  if (delayMs !== undefined) return { ...base, kind: "retry", error, delayMs, timedOut };
  return { ...base, kind: "failed", error: { ...error, retryable: false }, timedOut };
}
