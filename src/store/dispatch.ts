import type { NewJob } from "./store.js";

/**
 * Whether a job may be written already claimed (EnqueueContext.dispatch): due now, with nothing
 * that the launch or the claim would have to weigh (a uniqueKey, dependencies, a group limit). The queue's pause and group
 * limit are checked by the store at write time.
 */
export const canDispatch = (job: NewJob): boolean =>
  job.delayMs <= 0 &&
  job.uniqueKey === null &&
  job.runAt === null &&
  job.dependsOn.length === 0 &&
  job.group === null;
