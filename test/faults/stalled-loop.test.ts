/**
 * A handler that blocks the event loop (synchronous work) for several leases starves the worker's
 * heartbeat timer. The store's background thread keeps the lease alive, so the job is not rescued
 * and run a second time by another worker (the failure BullMQ users report as "could not renew
 * lock").
 */
import { describe, expect, it } from "vitest";
import { audit, FAULT_STORES, FIXED_RETRY, ofJob, TIMING, useFaultEnv } from "./helpers.js";

describe.each(FAULT_STORES)("a worker whose event loop stalls on $name", (store) => {
  const t = useFaultEnv(store);
  const timing = { leaseMs: TIMING.shortLeaseMs, rescueMs: TIMING.rescueMs };

  it(
    "keeps its lease through a stall of four leases: one run, no rescue",
    async () => {
      const a = await t.spawn("a", timing);
      const h = await t.ferry.launch(
        "fault.spin",
        { ms: timing.leaseMs * 4 },
        { attempts: 3, ...FIXED_RETRY },
      );
      await t.waitFor((e) => e.ev === "start" && e.id === h.id, "A to start the job");
      // B is ready to rescue anything whose lease runs out while A's loop is blocked.
      const b = await t.spawn("b", timing);
      const status = await t.ferry.wait(h, { timeout: TIMING.waitMs });
      expect(status).toMatchObject({ state: "completed", attempts: 1 });
      expect(await t.ferry.result(h)).toMatchObject({ value: { pid: a.pid, attempt: 1 } });
      const ledger = t.ledger();
      expect(ofJob(ledger, h.id, "start").map((s) => s.pid)).toEqual([a.pid]);
      const report = await audit(t.ferry, [{ handle: h, state: "completed" }], ledger);
      expect(report.problems).toEqual([]);
      expect(report.duplicates).toBe(0);
      expect(b.alive).toBe(true);
    },
    TIMING.testMs,
  );
});
