/**
 * A poison job that SIGKILLs whatever worker runs it: with attempts 2 it kills exactly two worker
 * processes, then the rescuer fails it with FERRY_HANDLER_CRASHED; every job launched alongside
 * still completes, re-run only when the process running it died under it.
 */
import { describe, expect, it } from "vitest";
import type { Handle } from "../../src/index.js";
import {
  audit,
  FAULT_STORES,
  type FaultEnv,
  FIXED_RETRY,
  ofJob,
  sleep,
  TIMING,
  useFaultEnv,
  type WorkerProcess,
} from "./helpers.js";

const timing = { leaseMs: TIMING.shortLeaseMs, rescueMs: TIMING.rescueMs, concurrency: 4 };

/** Keeps one worker process running, starting another each time one dies, until all are finished. */
async function runUntilFinished(t: FaultEnv, handles: readonly Handle[], maxProcesses: number) {
  const spawned: WorkerProcess[] = [await t.spawn("w1", timing)];
  const deadline = Date.now() + TIMING.waitMs;
  for (;;) {
    const statuses = await Promise.all(handles.map((h) => t.ferry.status(h)));
    if (statuses.every((s) => s.state === "completed" || s.state === "failed")) return spawned;
    if (Date.now() > deadline) throw new Error("the jobs did not finish in time");
    if (!spawned.at(-1)!.alive) {
      if (spawned.length >= maxProcesses) throw new Error(`${spawned.length} worker processes died`);
      spawned.push(await t.spawn(`w${spawned.length + 1}`, timing));
    }
    await sleep(100);
  }
}

describe.each(FAULT_STORES)("a crash-poison job on $name", (store) => {
  const t = useFaultEnv(store);

  it(
    "fails with FERRY_HANDLER_CRASHED after exactly its attempts, and the other jobs complete",
    async () => {
      // Launched in this order, the first worker claims [s1, s2, s3, poison] in one batch: the
      // three sleepers are running when the poison kills the process.
      const inFlight: Handle[] = [];
      for (let i = 0; i < 3; i++)
        inFlight.push(await t.ferry.launch("fault.sleep", { ms: 1_000 }, { attempts: 5, ...FIXED_RETRY }));
      const poison = await t.ferry.launch("fault.crash", null, { attempts: 2, ...FIXED_RETRY });
      // Each crash takes the jobs in flight with it: 2 crashes use at most 2 of 5 attempts.
      const rest = await t.ferry.launchMany(
        Array.from({ length: 20 }, (_, i) => ({
          handler: i % 4 === 0 ? "fault.sleep" : "fault.quick",
          payload: { ms: 300 },
          options: { attempts: 5, ...FIXED_RETRY },
        })),
      );
      const others = [...inFlight, ...rest];

      const spawned = await runUntilFinished(t, [poison, ...others], 4);

      const crashed = await t.ferry.result(poison);
      expect(crashed).toMatchObject({ state: "failed", attempts: 2 });
      expect(crashed.error).toMatchObject({ code: "FERRY_HANDLER_CRASHED", attempt: 2, retryable: false });

      // Exactly two processes died, each by the poison's SIGKILL; the third lives on.
      expect(spawned).toHaveLength(3);
      const [w1, w2, w3] = spawned as [WorkerProcess, WorkerProcess, WorkerProcess];
      expect(await w1.exited).toEqual({ code: null, signal: "SIGKILL" });
      expect(await w2.exited).toEqual({ code: null, signal: "SIGKILL" });
      expect(w3.alive).toBe(true);

      const ledger = t.ledger();
      expect(ofJob(ledger, poison.id, "start").map((s) => [s.pid, s.attempt])).toEqual([
        [w1.pid, 1],
        [w2.pid, 2],
      ]);

      const report = await audit(
        t.ferry,
        [
          { handle: poison, state: "failed" },
          ...others.map((handle) => ({ handle, state: "completed" as const })),
        ],
        ledger,
      );
      expect(report.problems).toEqual([]);
      // A job runs again only if the process it ran on died under it: every start but its last
      // is on w1 or w2, so at most 3 starts.
      const dead = new Set([w1.pid, w2.pid]);
      for (const handle of others) {
        const starts = report.jobs.get(handle.id)!.starts;
        expect(starts.slice(0, -1).filter((s) => !dead.has(s.pid))).toEqual([]);
        expect(starts.length).toBeLessThanOrEqual(3);
      }
      // The three sleepers were running on w1 when it died: each was re-run.
      for (const handle of inFlight) {
        const starts = report.jobs.get(handle.id)!.starts;
        expect(starts[0]).toMatchObject({ pid: w1.pid, attempt: 1 });
        expect(starts.length).toBeGreaterThanOrEqual(2);
      }
      const rerun = others.filter((h) => report.jobs.get(h.id)!.starts.length > 1).length;
      expect(rerun).toBeGreaterThanOrEqual(inFlight.length);
      expect(report.duplicates).toBe(1 + rerun);
      expect(await t.ferry.stats()).toMatchObject({ failed: 1, completed: others.length });
    },
    TIMING.testMs,
  );

  // Regression: the rescuer's final failure used to keep `retryable: true` (fixed in 01d6ae8),
  // while a worker's final failure is always `retryable: false`.
  it(
    "reports the rescuer's final FERRY_HANDLER_CRASHED as not retryable, like a worker's final error",
    async () => {
      const poison = await t.ferry.launch("fault.crash", null, { attempts: 1 });
      const spawned = await runUntilFinished(t, [poison], 3);
      expect(spawned).toHaveLength(2);
      const crashed = await t.ferry.result(poison);
      expect(crashed).toMatchObject({ state: "failed", attempts: 1 });
      expect(crashed.error).toMatchObject({ code: "FERRY_HANDLER_CRASHED", attempt: 1, retryable: false });
    },
    TIMING.testMs,
  );
});
