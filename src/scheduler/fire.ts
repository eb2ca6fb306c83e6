import { newJobId } from "../core/ids.js";
import { type LaunchOptions, resolveLaunchOptions } from "../core/options.js";
import type { ScheduleFiring, ScheduleRecord } from "../store/store.js";
import { nextRunAfter } from "./next-run.js";

/**
 * Makes the job a due schedule launches, and the schedule's next time. Fired jobs have no handle
 * (nobody was there to receive a cookie): they show in list() and stats, and their results are not kept.
 */
export function fireSchedule(schedule: ScheduleRecord, now: number): ScheduleFiring {
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
