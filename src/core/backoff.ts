import type { BackoffPolicy } from "./job.js";

/**
 * Delay before attempt `attempt + 1`, after `attempt` failed (attempt counts from 1).
 * Exponential doubles from the base and is capped at max; jitter spreads a share of each delay
 * at random so a burst of failures does not retry in lockstep.
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const raw = policy.type === "fixed" ? policy.baseMs : policy.baseMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(raw, policy.maxMs);
  if (policy.jitter <= 0) return Math.round(capped);
  const spread = capped * policy.jitter;
  return Math.round(capped - spread + random() * spread);
}
