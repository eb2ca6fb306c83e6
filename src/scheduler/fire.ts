import { newJobId } from "../core/ids.js";
import { type LaunchOptions, resolveLaunchOptions } from "../core/options.js";
import type { ScheduleFiring, ScheduleJobFiring, ScheduleRecord } from "../store/store.js";
import { nextRunAfter } from "./next-run.js";

/**
 * Whether a schedule's owner may start its handler now: undefined when it may, else the reason it
 * may not, which pauses the schedule and is shown with it. It runs inside the store's firing
 * transaction, so it answers from memory (the daemon's access document), never from I/O.
 */
export type FiringGate = (owner: string | null, handler: string) => string | undefined;

/**
 * Makes the job a due schedule launches, and the schedule's next time. Fired jobs have no handle
 * (nobody was there to receive a cookie): they show in list() and stats, and their results are not kept.
 */
export function fireSchedule(schedule: ScheduleRecord, now: number): ScheduleJobFiring {
  const options = resolveLaunchOptions(JSON.parse(schedule.options) as LaunchOptions);
  const lastFire = schedule.repeatLeft !== null && schedule.repeatLeft <= 1;
  return {
    job: {
      id: newJobId(),
      handler: schedule.handler,
      queue: options.queue,
      payload: schedule.payload,
      serializer: schedule.serializer,
      cookieHash: null,
      owner: schedule.owner,
      priority: options.priority,
      delayMs: 0,
      runAt: null,
      maxAttempts: options.maxAttempts,
      policy: options.policy,
      uniqueKey: null,
      label: options.label ?? `schedule:${schedule.name}`,
      group: options.group,
      dependsOn: [],
      detached: true,
    },
    nextRunAt: lastFire ? null : nextRunAfter(schedule.spec, now, schedule.nextRunAt),
  };
}

/**
 * `fireSchedule` behind `gate`: a schedule whose owner may not start its handler is paused with
 * the gate's reason instead of firing. Without a gate every due schedule fires.
 */
export function gatedFiring(
  gate: FiringGate | undefined,
): (schedule: ScheduleRecord, now: number) => ScheduleFiring {
  if (gate === undefined) return fireSchedule;
  return (schedule, now) => {
    const refusal = gate(schedule.owner, schedule.handler);
    return refusal === undefined ? fireSchedule(schedule, now) : { pause: refusal };
  };
}
