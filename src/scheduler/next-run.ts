import { Cron } from "croner";
import { invalidArgument } from "../core/errors.js";
import type { ScheduleSpec } from "../store/store.js";

/** Validates a cron expression and time zone; FERRY_INVALID_ARGUMENT when either is off. */
export function checkCron(cron: string, tz: string): void {
  if (typeof cron !== "string" || cron.length > 128) throw invalidArgument("cron must be a cron expression");
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
  } catch {
    throw invalidArgument(`unknown time zone ${JSON.stringify(tz)}`);
  }
  try {
    new Cron(cron, { timezone: tz, paused: true }).stop();
  } catch (error) {
    throw invalidArgument(`cron ${JSON.stringify(cron)}: ${(error as Error).message}`);
  }
}

/**
 * The first time strictly after `now` the schedule should fire. For `every`, steps from the last
 * planned time so ticks don't drift, skipping (not replaying) the ones missed while nothing ran.
 */
export function nextRunAfter(spec: ScheduleSpec, now: number, lastPlanned: number | null): number | null {
  if (spec.kind === "cron") {
    const next = new Cron(spec.cron, { timezone: spec.tz, paused: true }).nextRun(new Date(now));
    return next === null ? null : next.getTime();
  }
  if (lastPlanned === null) return now + spec.everyMs;
  const missed = Math.max(0, Math.floor((now - lastPlanned) / spec.everyMs));
  return lastPlanned + (missed + 1) * spec.everyMs;
}
