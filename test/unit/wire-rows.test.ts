/**
 * The daemon writes stats, workers and schedules with src/wire/rows.ts and `ferry/client`
 * reads them back with it: through the real message encoding both ways, a row comes back as it
 * left, and the JSON on the wire keeps its shape (RFC 3339 times, int64 counters, no nulls).
 */
import { create, fromBinary, toBinary, toJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { ScheduleView } from "../../src/api/schedules.js";
import { StatsResponseSchema, WorkerSchema } from "../../src/gen/ferry/v1/admin_pb.js";
import { ScheduleSchema } from "../../src/gen/ferry/v1/schedules_pb.js";
import type { StoreStats, WorkerInfo } from "../../src/store/store.js";
import {
  scheduleFromWire,
  scheduleToWire,
  statsFromWire,
  statsToWire,
  workerFromWire,
  workerToWire,
} from "../../src/wire/rows.js";

const stats: StoreStats = {
  byQueue: { default: { queued: 3, running: 1 }, mail: { failed: 2 } },
  launched: 12,
  completed: 7,
  failed: 2,
  cancelled: 1,
  timedOut: 1,
  avgRunMs: 41.5,
};

const worker: WorkerInfo = {
  id: "w1",
  name: "host-a:4242",
  host: "host-a",
  pid: 4242,
  queues: ["default", "mail"],
  running: 2,
  startedAt: Date.parse("2025-03-01T10:00:00.000Z"),
  lastHeartbeatAt: Date.parse("2025-03-01T10:05:00.250Z"),
};

const cronSchedule: ScheduleView = {
  id: "s1",
  name: "nightly",
  handler: "report.build",
  cron: "0 3 * * *",
  tz: "Europe/Paris",
  everyMs: null,
  repeatLeft: 4,
  paused: true,
  pausedReason: "owner lost the right",
  nextRunAt: new Date("2025-03-02T02:00:00.000Z"),
  lastFiredAt: new Date("2025-03-01T02:00:00.000Z"),
  owner: "ann",
};

const everySchedule: ScheduleView = {
  ...cronSchedule,
  id: "s2",
  cron: null,
  tz: null,
  everyMs: 90_000,
  repeatLeft: null,
  paused: false,
  pausedReason: null,
  lastFiredAt: null,
  owner: null,
};

describe("admin rows on the wire", () => {
  it("stats come back as they left, with int64 counters in the JSON", () => {
    const message = create(StatsResponseSchema, statsToWire(stats));
    expect(statsFromWire(fromBinary(StatsResponseSchema, toBinary(StatsResponseSchema, message)))).toEqual(
      stats,
    );
    expect(toJson(StatsResponseSchema, message)).toEqual({
      queues: [
        { queue: "default", states: { queued: "3", running: "1" } },
        { queue: "mail", states: { failed: "2" } },
      ],
      launched: "12",
      completed: "7",
      failed: "2",
      cancelled: "1",
      timedOut: "1",
      avgRunMs: 41.5,
    });
  });

  it("a worker comes back as it left, its times RFC 3339 on the wire", () => {
    const message = create(WorkerSchema, workerToWire(worker));
    expect(workerFromWire(fromBinary(WorkerSchema, toBinary(WorkerSchema, message)))).toEqual(worker);
    expect(toJson(WorkerSchema, message)).toMatchObject({
      startedAt: "2025-03-01T10:00:00.000Z",
      lastHeartbeatAt: "2025-03-01T10:05:00.250Z",
      queues: ["default", "mail"],
    });
  });

  it.each([
    ["cron", cronSchedule],
    ["every", everySchedule],
  ])("a %s schedule comes back as it left, its nulls left out on the wire", (_, view) => {
    const message = create(ScheduleSchema, scheduleToWire(view, true));
    expect(scheduleFromWire(fromBinary(ScheduleSchema, toBinary(ScheduleSchema, message)))).toEqual(view);
    const json = toJson(ScheduleSchema, message) as Record<string, unknown>;
    for (const [key, value] of Object.entries(view)) {
      if (value === null) expect(json, key).not.toHaveProperty(key);
    }
  });

  it("sends the owner only when asked (to admins)", () => {
    expect(scheduleFromWire(create(ScheduleSchema, scheduleToWire(cronSchedule))).owner).toBeNull();
    expect(scheduleFromWire(create(ScheduleSchema, scheduleToWire(cronSchedule, true))).owner).toBe("ann");
  });

  it("sends an every-schedule's period as int64 and its next run as RFC 3339", () => {
    expect(toJson(ScheduleSchema, create(ScheduleSchema, scheduleToWire(everySchedule)))).toEqual({
      id: "s2",
      name: "nightly",
      handler: "report.build",
      everyMs: "90000",
      nextRunAt: "2025-03-02T02:00:00.000Z",
    });
  });
});
