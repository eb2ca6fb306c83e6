/**
 * SIGKILL a worker process while its job runs: another process re-runs the job once the dead
 * worker's lease expires (within lease + rescue interval + the job's retry backoff), the lost
 * attempt is counted, and the job completes exactly once.
 */
import { describe, expect, it } from "vitest";
import { audit, FAULT_STORES, FIXED_RETRY, ofJob, TIMING, useFaultEnv } from "./helpers.js";

describe.each(FAULT_STORES)("SIGKILL a worker mid-job on $name", (store) => {
  const t = useFaultEnv(store);
  const timing = { leaseMs: TIMING.leaseMs, rescueMs: TIMING.rescueMs };

  it(
    "re-runs the job within lease + rescue interval (+ backoff), counting the lost attempt",
    async () => {
      const a = await t.spawn("a", timing);
      const h = await t.ferry.launch("fault.sleep", { ms: 5_000 }, { attempts: 3, ...FIXED_RETRY });
      const first = await t.waitFor((e) => e.ev === "start" && e.id === h.id, "the first run to start");
      expect(first).toMatchObject({ pid: a.pid, attempt: 1 });

      // B is up before the kill, so the bound below measures the rescue, not B's start-up.
      const b = await t.spawn("b", timing);
      expect(ofJob(t.ledger(), h.id, "end"), "the first run ended before the kill").toEqual([]);
      expect((await t.ferry.status(h)).state).toBe("running");

      const killedAt = Date.now();
      a.signal("SIGKILL");
      expect(await a.exited).toEqual({ code: null, signal: "SIGKILL" });

      const status = await t.ferry.wait(h, { timeout: TIMING.waitMs });
      expect(status).toMatchObject({ state: "completed", attempts: 2 });
      const result = await t.ferry.result(h);
      expect(result).toMatchObject({ state: "completed", attempts: 2, value: { pid: b.pid, attempt: 2 } });

      const ledger = t.ledger();
      const starts = ofJob(ledger, h.id, "start");
      expect(starts.map((s) => [s.pid, s.attempt])).toEqual([
        [a.pid, 1],
        [b.pid, 2],
      ]);
      expect(ofJob(ledger, h.id, "end").map((e) => [e.pid, e.attempt])).toEqual([[b.pid, 2]]);
      // Lease runs out, the next rescue tick re-queues it, after the job's retry backoff it runs.
      const boundMs = timing.leaseMs + timing.rescueMs + TIMING.retryBackoffMs;
      const rerunAfterMs = starts[1]!.t - killedAt;
      console.info(`sigkill: re-run began ${rerunAfterMs} ms after the kill (bound ${boundMs} ms + slack)`);
      expect(rerunAfterMs).toBeGreaterThan(0);
      expect(rerunAfterMs).toBeLessThanOrEqual(boundMs + TIMING.slackMs);

      // The worker notes its completion in the ledger after the store took it: wait may answer first.
      await t.waitFor(
        (e) => e.ev === "finish" && e.id === h.id && e.kind === "completed",
        "the completion in the ledger",
      );
      const report = await audit(t.ferry, [{ handle: h, state: "completed" }], t.ledger());
      expect(report.problems).toEqual([]);
      expect(report.duplicates).toBe(1);
      expect(report.extraStarts).toBe(1);
      expect((await t.ferry.stats()).failed).toBe(0);
      expect(b.alive).toBe(true);
    },
    TIMING.testMs,
  );
});
