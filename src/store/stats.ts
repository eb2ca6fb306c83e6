import type { JobState } from "../core/job.js";
import type { StoreStats } from "./store.js";

/** Additions to the lifetime counters, by counter name (as stored). */
export interface CounterDelta {
  launched?: number;
  completed?: number;
  failed?: number;
  cancelled?: number;
  timed_out?: number;
  run_ms_total?: number;
  run_count?: number;
}

/** Every counter at zero: what recording a batch of outcomes starts from. */
export const noCounts = (): Required<CounterDelta> => ({
  launched: 0,
  completed: 0,
  failed: 0,
  cancelled: 0,
  timed_out: 0,
  run_ms_total: 0,
  run_count: 0,
});

export interface StateCount {
  readonly queue: string;
  readonly state: JobState;
  readonly n: number;
}

/** Counts per queue and state (summed when a state comes in several rows) and the counters. */
export function toStoreStats(
  counts: Iterable<StateCount>,
  counters: readonly { readonly name: string; readonly value: number }[],
): StoreStats {
  const byQueue: Record<string, Partial<Record<JobState, number>>> = {};
  for (const row of counts) {
    byQueue[row.queue] ??= {};
    const queue = byQueue[row.queue]!;
    queue[row.state] = (queue[row.state] ?? 0) + row.n;
  }
  const c = Object.fromEntries(counters.map((r) => [r.name, r.value]));
  const runCount = c.run_count ?? 0;
  return {
    byQueue,
    launched: c.launched ?? 0,
    completed: c.completed ?? 0,
    failed: c.failed ?? 0,
    cancelled: c.cancelled ?? 0,
    timedOut: c.timed_out ?? 0,
    avgRunMs: runCount === 0 ? 0 : (c.run_ms_total ?? 0) / runCount,
  };
}
