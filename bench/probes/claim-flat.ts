/**
 * Probe: does claiming stay flat as the backlog grows? Times claim + finish of 50 jobs through
 * the SQLite store with 10k vs 1M queued, and with as many delayed jobs beside them.
 * Run: node --import tsx bench/probes/claim-flat.ts   (takes about a minute)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ferry } from "../../src/index.js";

async function measure(backlog: number, delayedToo: boolean): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "ferry-probe-"));
  const ferry = await Ferry.open({ store: `sqlite:${join(dir, "p.db")}` });
  try {
    for (let i = 0; i < backlog; i += 5_000) {
      await ferry.launchMany(Array.from({ length: 5_000 }, () => ({ handler: "bench.noop", payload: {} })));
      if (delayedToo) {
        await ferry.launchMany(
          Array.from({ length: 5_000 }, () => ({
            handler: "bench.noop",
            payload: {},
            options: { delay: "1h" },
          })),
        );
      }
    }
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      const { jobs } = await ferry.store.claim({
        workerId: "probe",
        queues: ["default"],
        handlers: ["bench.noop"],
        limit: 50,
        leaseMs: 30_000,
      });
      await ferry.store.finish(
        jobs.map((j) => ({ kind: "completed", id: j.id, fence: j.fence, result: null })),
      );
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    return `p50 ${times[100]!.toFixed(3)} ms, p90 ${times[180]!.toFixed(3)} ms per claim + finish of 50`;
  } finally {
    await ferry.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [backlog, delayed] of [
  [10_000, false],
  [1_000_000, false],
  [10_000, true],
  [500_000, true],
] as const) {
  console.log(`backlog ${backlog}${delayed ? " + as many delayed" : ""}: ${await measure(backlog, delayed)}`);
}
