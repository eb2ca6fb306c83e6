/**
 * `groupRate: "100/m"`: at most `limit` starts of one group's jobs per window of `periodMs`, on one
 * queue, across all workers. Windows are fixed and aligned to the epoch (BullMQ's group rate
 * limit works the same way); a retry is a start like any other.
 */
import { parseDuration } from "./duration.js";
import { invalidArgument } from "./errors.js";

export interface GroupRate {
  readonly limit: number;
  readonly periodMs: number;
}

const shape = /^(\d{1,7})\/(.+)$/;
const MIN_PERIOD_MS = 100;
const MAX_PERIOD_MS = 86_400_000;

/** "100/m", "5/s", "1000/h", "10/30s": a count, a slash, a unit (`s`, `m`, `h`, `d`) or a duration. */
export function parseGroupRate(value: unknown): GroupRate {
  const match = typeof value === "string" ? shape.exec(value) : null;
  if (match === null) {
    throw invalidArgument(`groupRate must look like "100/m" or "10/30s", got ${JSON.stringify(value)}`);
  }
  const limit = Number(match[1]);
  const unit = match[2]!;
  const periodMs = parseDuration(/^(s|m|h|d)$/.test(unit) ? `1${unit}` : unit, "groupRate's period");
  if (limit < 1 || limit > 1_000_000) throw invalidArgument("groupRate's count must be 1 to 1000000");
  if (periodMs < MIN_PERIOD_MS || periodMs > MAX_PERIOD_MS) {
    throw invalidArgument("groupRate's period must be 100ms to 1d");
  }
  return { limit, periodMs };
}

/** The window `now` falls in: starts are counted per window. */
export const rateWindow = (now: number, periodMs: number): number => Math.floor(now / periodMs);

/** How often a SQL store deletes the counts of ended windows (inside `pruneExpired`). */
export const RATE_PRUNE_EVERY_MS = 60_000;
