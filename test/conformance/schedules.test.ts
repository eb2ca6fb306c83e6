import { describe, expect, it } from "vitest";
import { ErrorCode, type FerryCaller } from "../../src/index.js";
import { fireSchedule } from "../../src/scheduler/fire.js";
import { nextRunAfter } from "../../src/scheduler/next-run.js";
import { collect, eventually, sleep } from "../helpers/temp.js";
import { useSubject } from "./setup.js";
import { LIBRARY_SUBJECTS, SUBJECTS } from "./stores.js";

const jobsOf = async (caller: FerryCaller, handler: string) => collect(caller.list({ handler }));
describe.each(SUBJECTS)("schedules on $name", (subject) => {
  const t = useSubject(subject);

  it("creates, lists, pauses, resumes, updates and cancels schedules", async () => {
    const s = await t.api.schedule(
      "report.daily",
      { cron: "0 6 * * *", tz: "Europe/Paris" },
      { kind: "daily" },
    );
    expect(s).toMatchObject({
      name: "report.daily",
      handler: "report.daily",
      cron: "0 6 * * *",
      tz: "Europe/Paris",
    });
    expect(s.nextRunAt!.getTime()).toBeGreaterThan(Date.now());
    expect((await t.api.schedules.list()).map((x) => x.id)).toEqual([s.id]);
    expect((await t.api.schedules.pause(s.id)).paused).toBe(true);
    expect((await t.api.schedules.resume(s.id)).paused).toBe(false);
    const updated = await t.api.schedules.update(s.id, { every: "15m", repeat: 3 });
    expect(updated).toMatchObject({ cron: null, everyMs: 900_000, repeatLeft: 3 });
    await t.api.schedules.cancel(s.id);
    expect(await t.api.schedules.list()).toEqual([]);
    await expect(t.api.schedules.cancel(s.id)).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });

  it("refuses bad cron expressions, time zones and intervals", async () => {
    await expect(t.api.schedule("x.y", { cron: "not cron" })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
    await expect(t.api.schedule("x.y", { cron: "* * * * *", tz: "Mars/Base" })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
    await expect(t.api.schedule("x.y", { every: "10ms" })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
    await expect(t.api.schedule("../x", { every: "1m" })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
  });

  it("fires a tick that fell due while nothing ran, once, after a restart", async () => {
    // Hourly, so the next tick cannot fall due while the test looks (a 1 s tick could on a
    // loaded machine, and a slow caller made it look unskipped).
    const s = await t.api.schedule("missed.job", { every: "1h" }, null);
    // Pretend every process was down for ten ticks.
    await t.api.schedules.update(s.id, { nextRunAt: new Date(Date.now() - 10 * 3_600_000) });
    const restarted = Date.now();
    const worker = t.ferry.worker({
      pollInterval: "50ms",
      rescueInterval: "200ms",
      handlers: { "missed.job": async () => 1 },
    });
    await worker.start();
    await eventually(async () => (await jobsOf(t.api, "missed.job")).length >= 1, "the missed tick to fire");
    await sleep(300);
    expect(await jobsOf(t.api, "missed.job")).toHaveLength(1);
    // The missed ticks are skipped: the next is the first one after the restart.
    const next = (await t.api.schedules.get(s.id)).nextRunAt!.getTime();
    expect(next).toBeGreaterThan(restarted);
    expect(next).toBeLessThanOrEqual(Date.now() + 3_600_000);
    await worker.stop();
  });

  it("runs fired jobs on workers and stops after `repeat` fires", async () => {
    const ran: number[] = [];
    const s = await t.api.schedule("repeat.job", { every: "1s", repeat: 2 }, { v: 9 }, { queue: "sched" });
    const worker = t.ferry.worker({
      queues: ["sched"],
      pollInterval: "50ms",
      rescueInterval: "200ms",
      handlers: { "repeat.job": async (p: { v: number }) => void ran.push(p.v) },
    });
    await worker.start();
    await eventually(() => ran.length >= 2, "two fires", 8_000);
    await sleep(1_300);
    expect(ran).toEqual([9, 9]);
    const after = await t.api.schedules.get(s.id);
    expect(after.repeatLeft).toBe(0);
    expect(after.nextRunAt).toBeNull();
    await worker.stop();
  });

  it("does not fire a paused schedule", async () => {
    const s = await t.api.schedule("paused.job", { every: "1h" }, null);
    await t.api.schedules.update(s.id, { nextRunAt: new Date(Date.now() - 1_000) });
    await t.api.schedules.pause(s.id);
    expect(await t.ferry.store.fireDueSchedules(fireSchedule)).toBe(0);
    await t.api.schedules.resume(s.id);
    expect(await t.ferry.store.fireDueSchedules(fireSchedule)).toBe(1);
  });
});

/** Scheduler passes racing on the store itself. */
describe.each(LIBRARY_SUBJECTS)("firing schedules on $name", (subject) => {
  const t = useSubject(subject);

  it("fires each due tick once even with several workers racing", async () => {
    const s = await t.ferry.schedule("tick.job", { every: "1h" }, { n: 1 });
    const others = await Promise.all([t.shared(), t.shared()]);
    const due = new Date(Date.now() - 1_000);
    await t.ferry.schedules.update(s.id, { nextRunAt: due });
    const fired = await Promise.all(
      [t.ferry, ...others, t.ferry, ...others].map((f) => f.store.fireDueSchedules(fireSchedule)),
    );
    expect(fired.reduce((a, b) => a + b, 0)).toBe(1);
    expect(await jobsOf(t.api, "tick.job")).toHaveLength(1);
    const after = await t.ferry.schedules.get(s.id);
    // The next tick is an hour after the one that fired, not an hour after now: no drift.
    expect(after.nextRunAt!.getTime()).toBe(due.getTime() + 3_600_000);
    expect(after.lastFiredAt).not.toBeNull();
  });
});

describe("next run times", () => {
  it("computes cron times in the schedule's time zone", () => {
    const at = Date.parse("2026-01-01T10:00:00Z");
    expect(nextRunAfter({ kind: "cron", cron: "0 6 * * *", tz: "UTC" }, at, null)).toBe(
      Date.parse("2026-01-02T06:00:00Z"),
    );
    expect(nextRunAfter({ kind: "cron", cron: "0 6 * * *", tz: "Europe/Paris" }, at, null)).toBe(
      Date.parse("2026-01-02T05:00:00Z"),
    );
  });

  it("steps `every` from the planned time, skipping missed ticks", () => {
    expect(nextRunAfter({ kind: "every", everyMs: 1_000 }, 10_500, 10_000)).toBe(11_000);
    expect(nextRunAfter({ kind: "every", everyMs: 1_000 }, 15_500, 10_000)).toBe(16_000);
    expect(nextRunAfter({ kind: "every", everyMs: 1_000 }, 10_000, null)).toBe(11_000);
  });
});
