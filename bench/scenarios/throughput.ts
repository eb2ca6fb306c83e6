/** Drain throughput: n no-op jobs pre-enqueued (not timed), then drained at a concurrency; jobs/s. */
import { round } from "../lib/time.js";
import { withDriver } from "../lib/with-driver.js";
import type { Scenario } from "./scenario.js";

export function throughput(jobs: number, concurrency: number, timeoutMs: number): Scenario {
  const warmup = Math.min(1000, Math.ceil(jobs / 10));
  return {
    id: "throughput",
    headline: { metric: "jobs_per_s", better: "higher" },
    params: { jobs, concurrency, warmup_jobs: warmup, timed: "drain only (enqueue excluded)" },
    target: { kind: "min_ratio_vs_raw", value: 0.5 },
    run: (name) =>
      withDriver(name, timeoutMs, async (driver) => {
        await driver.enqueueBulk(warmup);
        await driver.drain(warmup, concurrency);
        await driver.enqueueBulk(jobs);
        await driver.settle?.();
        const start = performance.now();
        await driver.drain(jobs, concurrency);
        const seconds = (performance.now() - start) / 1000;
        return { jobs, seconds: round(seconds), jobs_per_s: Math.round(jobs / seconds) };
      }),
  };
}
