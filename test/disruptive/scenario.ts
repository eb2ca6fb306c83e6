/**
 * What the disruptive tests share: worker-process timings, the check that every process's LISTEN
 * connection came back, and the end-of-run checks on the store and the ledger.
 */
import { expect } from "vitest";
import type { Ferry, Handle } from "../../src/index.js";
import { type FaultEnv, type LedgerEntry, sleep, TIMING } from "../faults/helpers.js";
import { eventually } from "../helpers/temp.js";
import { auditThroughLostAnswers, jobStates, listenerBackends, schemaOf } from "./helpers.js";

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

/**
 * Every job in the store ends completed (launches whose answer was lost included), and none is
 * left running without a live lease.
 */
export async function expectEveryJobCompleted(schema: string): Promise<void> {
  const states = await eventually(
    async () => {
      const s = await jobStates(schema);
      return Object.keys(s.byState).every((state) => state === "completed") ? s : undefined;
    },
    "every job in the store to complete",
    TIMING.waitMs,
  );
  expect(states!.runningWithoutLease).toEqual([]);
}

/**
 * The ledger audit holds, and no job ran twice unless it was in flight at the disruption: one
 * first claimed after `after` ran once.
 */
export async function expectNoLateDuplicates(
  ferry: Ferry,
  handles: readonly Handle[],
  ledger: () => LedgerEntry[],
  after: number,
) {
  const audited = await auditThroughLostAnswers(
    ferry,
    handles.map((handle) => ({ handle, state: "completed" as const })),
    ledger,
  );
  expect(audited.problems).toEqual([]);
  const lateDuplicates = [...audited.report.jobs.values()].filter(
    (job) => job.starts.length > 1 && job.starts[0]!.t > after,
  );
  // Each with its runs (process, attempt, fence, ms after `after`) and what ended them, to diagnose.
  expect(
    lateDuplicates.map(
      (j) =>
        `${j.id}: starts ${j.starts.map((e) => `${e.pid}/a${e.attempt}/f${e.fence}@${e.t - after}`).join(" ")}; ` +
        `ends ${j.ends.map((e) => `${e.pid}@${e.t - after}`).join(" ")}; ` +
        `claims ${j.claims.map((e) => `${e.pid}@${e.t - after}`).join(" ")}`,
    ),
  ).toEqual([]);
  return audited;
}
