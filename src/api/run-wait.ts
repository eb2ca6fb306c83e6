import { type Duration, parseDuration } from "../core/duration.js";

/**
 * How long `run` waits for its job, in ms (undefined: no limit): `wait` when given, else a little
 * past the job's own timeout, so a job the worker timed out is reported as such rather than
 * racing the waiter; either way the caller sees FERRY_TIMEOUT. The library, the daemon's `Run`
 * and the remote client all wait this long.
 */
export function runWaitMs(wait: Duration | undefined, jobTimeout: Duration | undefined): number | undefined {
  if (wait !== undefined) return parseDuration(wait, "wait");
  if (jobTimeout !== undefined) return parseDuration(jobTimeout, "timeout") + 1_000;
  return undefined;
}
