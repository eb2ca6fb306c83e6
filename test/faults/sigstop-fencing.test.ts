/**
 * SIGSTOP a worker past its lease: another worker rescues the job and completes it; when the
 * first worker is thawed (SIGCONT) its late write is refused by the fence, the stored result is
 * the second worker's, and the job is not re-opened.
 */
import { describe, expect, it } from "vitest";
import type { Handle } from "../../src/index.js";
import {
  audit,
  FAULT_STORES,
  FIXED_RETRY,
  type LedgerEntry,
  ofJob,
  processState,
  sleep,
  TIMING,
  useFaultEnv,
  type WorkerProcess,
} from "./helpers.js";

describe.each(FAULT_STORES)("SIGSTOP a worker past its lease on $name", (store) => {
  const t = useFaultEnv(store);
  const timing = { leaseMs: TIMING.shortLeaseMs, rescueMs: TIMING.rescueMs };

  /** Runs `handler` on A, freezes A, lets B rescue and complete it, then thaws A. */
  async function freezeAndRescue(handler: "fault.spin" | "fault.sleep") {
    const a = await t.spawn("a", timing);
    // Long on attempt 1 (A, frozen inside it), short on attempt 2 (B).
    const h = await t.ferry.launch(handler, { ms: [4_000, 200] }, { attempts: 3, ...FIXED_RETRY });
    const claimedByA = await t.waitFor((e) => e.ev === "claim" && e.id === h.id, "A to claim the job");
    expect(claimedByA).toMatchObject({ pid: a.pid, attempt: 1 });
    await t.waitFor((e) => e.ev === "start" && e.id === h.id, "A to start the job");
    a.signal("SIGSTOP");
    const stoppedAt = Date.now();
    if (processState(a.pid) !== undefined) {
      await sleep(50);
      expect(processState(a.pid), "A is stopped").toBe("T");
    }

    const b = await t.spawn("b", timing);
    const status = await t.ferry.wait(h, { timeout: TIMING.waitMs });
    expect(status).toMatchObject({ state: "completed", attempts: 2 });
    expect(Date.now() - stoppedAt).toBeGreaterThan(timing.leaseMs);
    expect(a.alive).toBe(true);
    const fromA = (e: LedgerEntry) => e.pid === a.pid && e.ev !== "claim" && e.ev !== "start";
    expect(ofJob(t.ledger(), h.id).filter(fromA), "A did nothing while frozen").toEqual([]);

    a.signal("SIGCONT");
    return { a, b, h, aFence: claimedByA.fence! };
  }

  /** Gives the thawed A a heartbeat and a rescue tick or two to do damage, then checks it did none. */
  async function expectBWon(a: WorkerProcess, b: WorkerProcess, h: Handle) {
    await sleep(timing.leaseMs + timing.rescueMs + 1_000);
    expect(a.alive, "A survives being frozen").toBe(true);
    expect(await t.ferry.status(h)).toMatchObject({ state: "completed", attempts: 2 });
    const result = await t.ferry.result(h);
    expect(result).toMatchObject({ state: "completed", attempts: 2, value: { pid: b.pid, attempt: 2 } });

    const ledger = t.ledger();
    expect(ofJob(ledger, h.id, "claim").map((c) => [c.pid, c.attempt])).toEqual([
      [a.pid, 1],
      [b.pid, 2],
    ]);
    expect(ofJob(ledger, h.id, "start").map((s) => [s.pid, s.attempt])).toEqual([
      [a.pid, 1],
      [b.pid, 2],
    ]);
    const report = await audit(t.ferry, [{ handle: h, state: "completed" }], ledger);
    expect(report.problems).toEqual([]);
    expect(report.duplicates).toBe(1);
    // B holds the last fence and wrote the completion the store kept.
    const job = report.jobs.get(h.id)!;
    expect(job.claims.find((c) => c.fence === job.fence)?.pid).toBe(b.pid);
    return { ledger, report };
  }

  it(
    "refuses the thawed worker's late completion at the store (fence), keeping B's result",
    async () => {
      // fault.spin: A resumes inside the handler, which returns before any heartbeat can run, so
      // A's completion with its stale fence really is written, and must be refused.
      const { a, b, h, aFence } = await freezeAndRescue("fault.spin");
      const late = await t.waitFor(
        (e) => e.ev === "finish" && e.id === h.id && e.pid === a.pid,
        "A's late write to reach the store",
      );
      expect(late).toMatchObject({ kind: "completed", fence: aFence });
      expect(late.applied).not.toBe(true);

      const { ledger, report } = await expectBWon(a, b, h);
      expect(report.refused).toEqual([late]);
      // A's handler did finish its work, after B's completion was in the store.
      const aEnd = ofJob(ledger, h.id, "end").find((e) => e.pid === a.pid)!;
      const bWrite = ofJob(ledger, h.id, "finish").find((e) => e.pid === b.pid)!;
      expect(bWrite).toMatchObject({ kind: "completed" });
      expect(aEnd.t).toBeGreaterThanOrEqual(bWrite.t);
    },
    TIMING.testMs,
  );

  it(
    "a thawed worker with a signal-aware handler drops the job or is refused; B's result stands",
    async () => {
      const { a, b, h, aFence } = await freezeAndRescue("fault.sleep");
      // Which of A's overdue timers fires first decides the path: the heartbeat (lease lost, the
      // handler is aborted and nothing is written) or the sleep (a stale write, refused).
      const noticed = await t.waitFor(
        (e) => e.id === h.id && e.pid === a.pid && (e.ev === "lease-lost" || e.ev === "finish"),
        "A to notice it lost the job",
      );
      const { report } = await expectBWon(a, b, h);
      if (noticed.ev === "finish") {
        expect(noticed).toMatchObject({ kind: "completed", fence: aFence });
        expect(report.refused).toEqual([noticed]);
      } else {
        expect(report.refused).toEqual([]);
        expect(ofJob(t.ledger(), h.id, "abort")).toMatchObject([{ pid: a.pid, code: "FERRY_CANCELLED" }]);
      }
    },
    TIMING.testMs,
  );
});
