/**
 * Enqueue -> handler-start latency at a fixed rate, producer and worker in one process. Sends follow
 * a fixed timetable (send i is due at t0 + i/rate, whatever earlier sends cost), each payload carries
 * its performance.now() send time, and the first `warmup` seconds are not counted.
 */
import { summarize } from "../lib/stats.js";
import { errorText, round, sleep } from "../lib/time.js";
import { withDriver } from "../lib/with-driver.js";
import type { Scenario } from "./scenario.js";

export interface LatencyOptions {
  readonly rate: number;
  readonly seconds: number;
  readonly warmup: number;
  readonly concurrency: number;
}

/** How long to wait for the last jobs to start after the last send. */
const SETTLE_MS = 10_000;

export function latency(o: LatencyOptions): Scenario {
  const total = Math.round(o.rate * (o.warmup + o.seconds));
  const timeoutMs = (o.warmup + o.seconds) * 1000 + SETTLE_MS + 20_000;
  return {
    id: "latency",
    headline: { metric: "p99_ms", better: "lower" },
    params: { rate_per_s: o.rate, seconds: o.seconds, warmup_s: o.warmup, concurrency: o.concurrency },
    target: { kind: "max_absolute", value: 2 },
    run: (name) =>
      withDriver(name, timeoutMs, async (driver) => {
        const samples: number[] = [];
        const seen = new Set<number>();
        let duplicates = 0;
        let allStarted: () => void = () => {};
        const started = new Promise<void>((resolve) => (allStarted = resolve));
        const interval = 1000 / o.rate;
        const t0 = performance.now() + 100;
        const measureFrom = t0 + o.warmup * 1000;

        await driver.startLatencyConsumer(o.concurrency, (sentAt) => {
          const now = performance.now();
          if (seen.has(sentAt)) {
            duplicates++;
            return;
          }
          seen.add(sentAt);
          if (sentAt >= measureFrom) samples.push(now - sentAt);
          if (seen.size === total) allStarted();
        });

        let maxLag = 0;
        let sendErrors = 0;
        let firstError = "";
        const sends: Promise<void>[] = [];
        for (let i = 0; i < total; i++) {
          const due = t0 + i * interval;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          const sentAt = performance.now();
          maxLag = Math.max(maxLag, sentAt - due);
          sends.push(
            driver.enqueueOne(sentAt).catch((err: unknown) => {
              sendErrors++;
              firstError ||= errorText(err);
            }),
          );
        }
        await Promise.all(sends);
        const settled = await Promise.race([started.then(() => true), sleep(SETTLE_MS).then(() => false)]);
        await driver.stopConsumer();
        return {
          sent: total,
          measured: samples.length,
          missing: total - seen.size,
          duplicates,
          ...summarize(samples),
          max_send_lag_ms: round(maxLag),
          send_errors: sendErrors,
          ...(firstError ? { first_send_error: firstError } : {}),
          ...(settled ? {} : { note: `not all jobs started within ${SETTLE_MS / 1000} s of the last send` }),
        };
      }),
  };
}
