import { invalidArgument } from "./errors.js";

const unitMs: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** "30s", "5m", "1h30m", "250ms", "7d", or a number of milliseconds. */
export type Duration = string | number;

const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Parses a duration into whole milliseconds; anything else is FERRY_INVALID_ARGUMENT. */
export function parseDuration(value: Duration, name = "duration"): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0)
      throw invalidArgument(`${name} must be a non-negative number of ms`);
    return Math.round(value);
  }
  if (typeof value !== "string" || value.length === 0 || value.length > 32) {
    throw invalidArgument(`${name} must be a duration like "30s" or "5m"`);
  }
  let total = 0;
  part.lastIndex = 0;
  while (part.lastIndex < value.length) {
    const match = part.exec(value);
    if (match === null)
      throw invalidArgument(`${name} must be a duration like "30s" or "5m", got ${JSON.stringify(value)}`);
    total += Number(match[1]) * (unitMs[match[2]!] ?? 0);
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER)
    throw invalidArgument(`${name} is too large`);
  return Math.round(total);
}

export function optionalDuration(value: Duration | undefined, name: string): number | undefined {
  return value === undefined ? undefined : parseDuration(value, name);
}
