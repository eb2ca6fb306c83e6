import { backoffDelay } from "./backoff.js";
import type { ErrorInfo, JobPolicy } from "./job.js";

export interface AttemptFacts {
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly policy: JobPolicy;
}

/** Whether a failed attempt may run again, by the job's attempts and its retryOn / ignoreOn rules. */
export function mayRetry(job: AttemptFacts, error: ErrorInfo): boolean {
  if (!error.retryable || job.attempt >= job.maxAttempts) return false;
  const { retryOn, ignoreOn } = job.policy;
  if (ignoreOn?.includes(error.code)) return false;
  if (retryOn !== null && !retryOn.includes(error.code)) return false;
  return true;
}

/** The delay before the next attempt, or undefined when the failure is final. */
export function retryDelay(job: AttemptFacts, error: ErrorInfo): number | undefined {
  return mayRetry(job, error) ? backoffDelay(job.policy.backoff, job.attempt) : undefined;
}
