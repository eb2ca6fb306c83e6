import { describe, expect, it } from "vitest";
import { collect, sleep } from "../helpers/temp.js";
import { useSubject } from "./setup.js";
import { SUBJECTS } from "./stores.js";

describe.each(SUBJECTS)("listing, stats, purge and retention on $name", (subject) => {
  const t = useSubject(subject);

  it("lists jobs page by page with filters, previews and no cookies", async () => {
    const handles = await t.api.launchMany(
      Array.from({ length: 450 }, (_, i) => ({
        handler: "demo.list",
        payload: { i, text: "x".repeat(200) },
        options: { queue: i % 3 === 0 ? "q3" : "default", label: `batch-${i % 2}` },
      })),
    );
    const all = await collect(t.api.list());
    expect(all).toHaveLength(450);
    expect(all.map((r) => r.id)).toEqual(handles.map((h) => h.id));
    expect(await collect(t.api.list({ queue: "q3" }))).toHaveLength(150);
    expect(await collect(t.api.list({ label: "batch-1" }))).toHaveLength(225);
    expect(await collect(t.api.list({ limit: 7 }))).toHaveLength(7);
    expect(await collect(t.api.list({ state: "running" }))).toHaveLength(0);
    const row = all[0]!;
    expect(row.preview).toHaveLength(120);
    expect(row.preview!.startsWith('{"i":0')).toBe(true);
    expect(Object.keys(row).sort()).toEqual(
      [
        "attempts",
        "consumed",
        "finishedAt",
        "handler",
        "id",
        "label",
        "lastError",
        "lastErrorCode",
        "launchedAt",
        "owner",
        "preview",
        "progress",
        "queue",
        "startedAt",
        "state",
      ].sort(),
    );
    expect(JSON.stringify(all)).not.toContain(handles[0]!.cookie);
  });

  it("counts jobs by queue and state, and lifetime totals", async () => {
    await t.api.launchMany([
      { handler: "demo.a", options: { queue: "x" } },
      { handler: "demo.a", options: { queue: "x" } },
      { handler: "demo.a", options: { queue: "y", delay: "1h" } },
    ]);
    const worker = t.ferry.worker({
      queues: ["x"],
      pollInterval: "20ms",
      handlers: { "demo.a": async () => 1 },
    });
    await worker.start();
    for (let i = 0; i < 100 && (await t.api.stats()).completed < 2; i++) await sleep(20);
    const stats = await t.api.stats();
    expect(stats.byQueue.x).toEqual({ completed: 2 });
    expect(stats.byQueue.y).toEqual({ scheduled: 1 });
    expect(stats).toMatchObject({ launched: 3, completed: 2, failed: 0, cancelled: 0 });
    expect(stats.avgRunMs).toBeGreaterThanOrEqual(0);
  });

  it("purges finished jobs older than a given age", async () => {
    const h = await t.api.launch("demo.p", {}, { delay: "1h" });
    await t.api.cancel(h);
    const keep = await t.api.launch("demo.p", {}, { delay: "1h" });
    expect(await t.api.purge({ state: "cancelled", olderThan: "1h" })).toBe(0);
    await sleep(30);
    expect(await t.api.purge({ state: "cancelled", olderThan: "10ms" })).toBe(1);
    await expect(t.api.status(h)).rejects.toMatchObject({ code: "FERRY_NOT_FOUND" });
    expect((await t.api.status(keep)).state).toBe("scheduled");
  });

  it("prunes results whose retention ended", async () => {
    const worker = t.ferry.worker({
      pollInterval: "20ms",
      maintenance: false,
      handlers: { "demo.r": async () => 1 },
    });
    await worker.start();
    const short = await t.api.launch("demo.r", {}, { resultTtl: "50ms" });
    const long = await t.api.launch("demo.r", {}, { resultTtl: "1h" });
    await t.api.drain([short, long], { timeout: "10s" });
    await sleep(100);
    expect(await t.ferry.store.pruneExpired(100)).toBe(1);
    await expect(t.api.status(short)).rejects.toMatchObject({ code: "FERRY_NOT_FOUND" });
    expect((await t.api.result(long)).value).toBe(1);
  });
});
