import type { JobPolicy } from "../core/job.js";
import { DEFAULT_POLICY } from "../core/options.js";

/**
 * How stores keep a job's policy: NULL for the default policy (most jobs; keeps rows small),
 * else its JSON text. Jobs launched together share one policy text, so both directions cache.
 */
const parsed = new Map<string, JobPolicy>();

export function parsePolicy(text: string | null): JobPolicy {
  if (text === null) return DEFAULT_POLICY;
  let policy = parsed.get(text);
  if (policy === undefined) {
    policy = JSON.parse(text) as JobPolicy;
    if (parsed.size > 256) parsed.clear();
    parsed.set(text, policy);
  }
  return policy;
}

/** A stringifier that remembers its last policy object: launchMany shares one. */
export function makePolicyText(): (policy: JobPolicy) => string | null {
  let lastPolicy: JobPolicy | undefined;
  let lastText: string | null = null;
  return (policy) => {
    if (policy === DEFAULT_POLICY) return null;
    if (policy !== lastPolicy) {
      lastPolicy = policy;
      lastText = JSON.stringify(policy);
    }
    return lastText;
  };
}
