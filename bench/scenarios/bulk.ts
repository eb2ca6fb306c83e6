/** Bulk enqueue rate: n no-op jobs in batches (BULK_BATCH per round trip / transaction); jobs/s. */
import { BULK_BATCH } from "../driver.js";
import { round } from "../lib/time.js";
import { withDriver } from "../lib/with-driver.js";
import type { Scenario } from "./scenario.js";

export function bulk(jobs: number, timeoutMs: number): Scenario {
  const warmup = Math.min(BULK_BATCH, jobs);
  return {
    id: "bulk",
    headline: { metric: "jobs_per_s", better: "higher" },
    params: { jobs, batch: BULK_BATCH, warmup_jobs: warmup },
    target: { kind: "min_ratio_vs_raw", value: 0.25 },
    run: (name) =>
      withDriver(name, timeoutMs, async (driver) => {
        await driver.enqueueBulk(warmup);
        const start = performance.now();
        await driver.enqueueBulk(jobs);
        const seconds = (performance.now() - start) / 1000;
        return { jobs, seconds: round(seconds), jobs_per_s: Math.round(jobs / seconds) };
      }),
  };
}
