/**
 * A handler that never returns and ignores its signal: its timeout fails the attempt with
 * FERRY_TIMEOUT, the slot is freed for the next job, and the worker process lives on.
 */
import { describe, expect, it } from "vitest";
import { audit, collect, FAULT_STORES, ofJob, sleep, TIMING, useFaultEnv } from "./helpers.js";

describe.each(FAULT_STORES)("a handler that never returns on $name", (store) => {
  const t = useFaultEnv(store);

  it(
    "times out with FERRY_TIMEOUT, frees the only slot, and the worker stays alive",
    async () => {
      const timeoutMs = 1_500;
      const w = await t.spawn("w", { concurrency: 1 });
      const hang = await t.ferry.launch("fault.hang", null, { attempts: 1, timeout: timeoutMs });
      const next = await t.ferry.launch("fault.quick", null, { attempts: 1 });

      const [hangStatus, nextStatus] = await t.ferry.drain([hang, next], { timeout: TIMING.waitMs });
      expect(hangStatus).toMatchObject({ state: "failed", attempts: 1 });
      expect(nextStatus).toMatchObject({ state: "completed", attempts: 1 });

      const failed = await t.ferry.result(hang);
      expect(failed.state).toBe("failed");
      expect(failed.error).toMatchObject({ code: "FERRY_TIMEOUT", attempt: 1 });
      expect(await t.ferry.result(next)).toMatchObject({ state: "completed", value: { pid: w.pid } });

      const ledger = t.ledger();
      const hangStart = ofJob(ledger, hang.id, "start");
      expect(hangStart.map((s) => s.pid)).toEqual([w.pid]);
      expect(ofJob(ledger, hang.id, "end"), "the hung handler never returned").toEqual([]);
      expect(ofJob(ledger, hang.id, "finish")).toMatchObject([{ kind: "failed", code: "FERRY_TIMEOUT" }]);
      // One slot: the second job ran only once the timeout had freed it.
      const nextStart = ofJob(ledger, next.id, "start");
      expect(nextStart.map((s) => s.pid)).toEqual([w.pid]);
      expect(nextStart[0]!.t - hangStart[0]!.t).toBeGreaterThanOrEqual(timeoutMs - 50);

      const report = await audit(
        t.ferry,
        [
          { handle: hang, state: "failed" },
          { handle: next, state: "completed" },
        ],
        ledger,
      );
      expect(report.problems).toEqual([]);
      expect(report.duplicates).toBe(0);
      const stats = await t.ferry.stats();
      expect(stats).toMatchObject({ failed: 1, completed: 1, timedOut: 1 });

      // Alive and still heartbeating well after the timeout, with the hung handler still pending.
      await sleep(TIMING.leaseMs);
      expect(w.alive).toBe(true);
      const workers = await collect(t.ferry.workers());
      const me = workers.find((info) => info.pid === w.pid);
      expect(me).toBeDefined();
      expect(Date.now() - me!.lastHeartbeatAt).toBeLessThan(TIMING.leaseMs + TIMING.slackMs);
      expect(me!.running).toBe(0);

      // And it still works, and still stops gracefully: the hung promise holds nothing.
      const again = await t.ferry.launch("fault.quick", null);
      expect(await t.ferry.wait(again, { timeout: TIMING.waitMs })).toMatchObject({ state: "completed" });
      expect(await w.stop()).toEqual({ code: 0, signal: null });
    },
    TIMING.testMs,
  );
});
