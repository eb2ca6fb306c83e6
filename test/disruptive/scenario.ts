/**
 * What the restart and terminate tests share: worker-process timings, and the checks that every
 * process's LISTEN connection came back.
 */
import { expect } from "vitest";
import { type FaultEnv, sleep, TIMING } from "../faults/helpers.js";
import { listenerBackends, schemaOf } from "./helpers.js";

/**
 * Worker processes poll rarely (5 s), so a job picked up within a second was woken by a
 * notification: that is how the tests see a worker's LISTEN connection working again.
 */
export const WORKER_TIMING = {
  leaseMs: TIMING.leaseMs,
  rescueMs: TIMING.rescueMs,
  pollMs: 5_000,
  concurrency: 4,
} as const;

/** Processes with a Ferry on the store: worker processes a and b, and the test process. */
const PROCESSES = 3;

/**
 * Exactly one LISTEN connection per process, each opened after `since` (the disruption): the old
 * ones were replaced, and none was duplicated by the reconnection.
 */
export async function expectListenersBack(t: FaultEnv, since: number): Promise<void> {
  const schema = schemaOf(t.url);
  const deadline = Date.now() + 20_000;
  let seen = await listenerBackends(schema);
  while (
    (seen.length !== PROCESSES || seen.some((l) => l.backendStart < since - 1_000)) &&
    Date.now() < deadline
  ) {
    await sleep(250);
    seen = await listenerBackends(schema);
  }
  expect(seen, "one fresh LISTEN connection per process").toHaveLength(PROCESSES);
  expect(seen.filter((l) => l.backendStart < since - 1_000)).toEqual([]);
}

/**
 * Launches `n` quick jobs one at a time, each once the previous one ran, and answers how long each
 * took from launch to start. Each must start well within the workers' poll interval.
 */
export async function probeNotifications(t: FaultEnv, n: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const launchedAt = Date.now();
    const h = await t.ferry.launch("fault.quick", null);
    const start = await t.waitFor((e) => e.ev === "start" && e.id === h.id, `probe ${i} to start`, 10_000);
    latencies.push(start.t - launchedAt);
    await sleep(300 + Math.floor(Math.random() * 700));
  }
  expect(
    latencies.filter((ms) => ms > 1_500),
    `launch-to-start latencies ${latencies.join(", ")} ms (poll ${WORKER_TIMING.pollMs} ms)`,
  ).toEqual([]);
  return latencies;
}
