/**
 * Two worker processes claiming from one store while jobs keep arriving: every job is claimed
 * and run exactly once (no double claims, no duplicates: no worker died), and lock contention
 * between the processes (SQLITE_BUSY on one file) never becomes a job failure.
 */
import { describe, expect, it } from "vitest";
import type { LaunchedHandle } from "../../src/index.js";
import { audit, FAULT_STORES, sleep, TIMING, useFaultEnv } from "./helpers.js";

describe.each(FAULT_STORES)("two worker processes on one $name store", (store) => {
  const t = useFaultEnv(store);

  it(
    "runs 2,000 jobs launched in batches exactly once each, with no failures",
    async () => {
      const options = { leaseMs: TIMING.leaseMs, rescueMs: TIMING.rescueMs, pollMs: 50, concurrency: 8 };
      const [a, b] = await Promise.all([t.spawn("a", options), t.spawn("b", options)]);

      const handles: LaunchedHandle[] = [];
      for (let batch = 0; batch < 20; batch++) {
        handles.push(
          ...(await t.ferry.launchMany(
            Array.from({ length: 100 }, () => ({ handler: "fault.quick", payload: null })),
          )),
        );
        await sleep(25);
      }
      expect(handles).toHaveLength(2_000);

      const statuses = await t.ferry.drain(handles, { timeout: TIMING.waitMs });
      expect(statuses.filter((s) => s.state !== "completed")).toEqual([]);
      const stats = await t.ferry.stats();
      expect(stats).toMatchObject({
        launched: 2_000,
        completed: 2_000,
        failed: 0,
        cancelled: 0,
        timedOut: 0,
      });

      const pids = new Set([a.pid, b.pid]);
      const results = await Promise.all(handles.map((h) => t.ferry.result(h)));
      expect(results.filter((r) => r.state !== "completed" || r.attempts !== 1)).toEqual([]);
      expect(results.filter((r) => !pids.has((r.value as { pid: number }).pid))).toEqual([]);

      const ledger = t.ledger();
      const claims = new Map<string, number>();
      for (const e of ledger) if (e.ev === "claim") claims.set(e.id!, (claims.get(e.id!) ?? 0) + 1);
      expect(claims.size).toBe(2_000);
      expect([...claims.values()].filter((n) => n !== 1)).toEqual([]);
      expect(ledger.filter((e) => e.ev === "failed" || e.ev === "lease-lost")).toEqual([]);
      const writes = ledger.filter((e) => e.ev === "finish");
      expect(writes).toHaveLength(2_000);
      expect(writes.filter((e) => e.kind !== "completed" || e.applied === false)).toEqual([]);

      const report = await audit(
        t.ferry,
        handles.map((handle) => ({ handle, state: "completed" as const })),
        ledger,
      );
      expect(report.problems).toEqual([]);
      expect(report.duplicates).toBe(0);
      expect(report.refused).toEqual([]);
      for (const job of report.jobs.values()) expect(job.starts).toHaveLength(1);

      // Both processes really claimed from the file.
      const byPid = new Map<number, number>();
      for (const e of ledger) if (e.ev === "start") byPid.set(e.pid, (byPid.get(e.pid) ?? 0) + 1);
      expect(byPid.get(a.pid)).toBeGreaterThan(0);
      expect(byPid.get(b.pid)).toBeGreaterThan(0);
      expect((byPid.get(a.pid) ?? 0) + (byPid.get(b.pid) ?? 0)).toBe(2_000);
      const busy = ledger.filter((e) => e.ev === "worker-error").length;
      console.info(
        `two processes: a ran ${byPid.get(a.pid)}, b ran ${byPid.get(b.pid)}; ${busy} store errors retried`,
      );
      expect(a.alive && b.alive).toBe(true);
    },
    TIMING.testMs,
  );
});
