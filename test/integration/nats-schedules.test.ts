/**
 * The NATS store's schedules against the machine's nats-server (FERRY_TEST_NATS_URL overrides
 * nats://127.0.0.1:4222): a fresh KV bucket per test, several instances on separate connections
 * standing in for several processes. A server that is down fails these tests; it does not skip them.
 */
import { randomBytes } from "node:crypto";
import { StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { newJobId } from "../../src/core/ids.js";
import { fireSchedule } from "../../src/scheduler/fire.js";
import {
  type Enqueue,
  enqueueOnce,
  NatsSchedules,
  PENDING_GRACE_MS,
} from "../../src/store/nats/schedules.js";
import type { JobRecord, NewJob, ScheduleInput, ScheduleRecord } from "../../src/store/store.js";
import { plainNewJob } from "../helpers/new-job.js";
import { sleep } from "../helpers/temp.js";

const NATS_HOST = new URL(process.env.FERRY_TEST_NATS_URL ?? "nats://127.0.0.1:4222").host;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

let bucket: string;
let connections: NatsConnection[];
let kv: KV;

const open = async (): Promise<KV> => {
  const nc = await connect({ servers: NATS_HOST, timeout: 2_000 });
  connections.push(nc);
  return new Kvm(nc).open(bucket);
};

beforeEach(async () => {
  bucket = `ft_sched_${randomBytes(6).toString("hex")}`;
  connections = [];
  const nc = await connect({ servers: NATS_HOST, timeout: 2_000 });
  connections.push(nc);
  kv = await new Kvm(nc).create(bucket, { history: 1, storage: StorageType.File });
});

afterEach(async () => {
  await kv?.destroy();
  await Promise.all(connections.map((nc) => nc.close()));
});

/** Records every enqueue call; a short pause widens the window between the two phases. */
function recorder(): { jobs: NewJob[]; enqueue: Enqueue } {
  const jobs: NewJob[] = [];
  return {
    jobs,
    enqueue: async (job) => {
      await sleep(2);
      jobs.push(job);
    },
  };
}

/** One "process": its own connection and instance. */
const instance = async (enqueue: Enqueue): Promise<NatsSchedules> => new NatsSchedules(await open(), enqueue);

const input = (name: string, over: Partial<ScheduleInput> = {}): ScheduleInput => ({
  id: newJobId(),
  name,
  handler: name,
  spec: { kind: "every", everyMs: HOUR },
  repeatLeft: null,
  payload: new TextEncoder().encode(JSON.stringify({ name })),
  serializer: "json",
  options: "{}",
  owner: null,
  paused: false,
  nextRunAt: T0,
  ...over,
});

/** The raw record, bookkeeping included. */
const raw = async (id: string): Promise<{ pending: unknown; deleted: boolean } | null> => {
  const entry = await kv.get(`schedule.${id}`);
  return entry?.operation === "PUT" ? entry.json() : null;
};

describe("NatsSchedules: records", () => {
  it("upserting a name twice keeps one schedule, with its id and createdAt", async () => {
    const { enqueue } = recorder();
    const schedules = new NatsSchedules(kv, enqueue);
    const first = await schedules.upsert(input("report.daily"), T0);
    const second = await schedules.upsert(
      input("report.daily", { payload: new Uint8Array([1, 2]), paused: true, nextRunAt: T0 + 5 }),
      T0 + 1_000,
    );
    expect(second).toMatchObject({ id: first.id, createdAt: T0, paused: true, nextRunAt: T0 + 5 });
    expect(second.payload).toEqual(new Uint8Array([1, 2]));
    expect(await schedules.list()).toEqual([second]);
  });

  it("makes one schedule of concurrent upserts of one name from several processes", async () => {
    const { enqueue } = recorder();
    const racers = await Promise.all([1, 2, 3, 4, 5].map(() => instance(enqueue)));
    const answers = await Promise.all(racers.map((r, i) => r.upsert(input("race.name"), T0 + i)));
    expect(new Set(answers.map((a) => a.id)).size).toBe(1);
    const listed = await racers[0]!.list();
    expect(listed.map((s) => s.id)).toEqual([answers[0]!.id]);
  });

  it("gets, lists by name, updates and deletes", async () => {
    const schedules = new NatsSchedules(kv, recorder().enqueue);
    const b = await schedules.upsert(input("b.job"), T0);
    const a = await schedules.upsert(input("a.job"), T0);
    await schedules.upsert(input("c.job"), T0);
    expect((await schedules.list()).map((s) => s.name)).toEqual(["a.job", "b.job", "c.job"]);
    expect(await schedules.get(a.id)).toEqual(a);
    expect(await schedules.get(newJobId())).toBeUndefined();
    expect(await schedules.get("not.a.key")).toBeUndefined();

    const updated = await schedules.update(a.id, {
      spec: { kind: "cron", cron: "0 6 * * *", tz: "UTC" },
      repeatLeft: 3,
      nextRunAt: null,
      paused: true,
    });
    expect(updated).toEqual({
      ...a,
      spec: { kind: "cron", cron: "0 6 * * *", tz: "UTC" },
      repeatLeft: 3,
      nextRunAt: null,
      paused: true,
    });
    expect(await schedules.update(a.id, {})).toEqual(updated);
    expect(await schedules.update(newJobId(), { paused: true })).toBeUndefined();

    expect(await schedules.delete(b.id)).toBe(true);
    expect(await schedules.delete(b.id)).toBe(false);
    expect(await schedules.get(b.id)).toBeUndefined();
    expect(await schedules.update(b.id, { paused: true })).toBeUndefined();
    expect((await schedules.list()).map((s) => s.name)).toEqual(["a.job", "c.job"]);
    expect(await raw(b.id)).toBeNull();
    // The name is free again: a new schedule, not the deleted one revived.
    const again = await schedules.upsert(input("b.job"), T0 + 1);
    expect(again.id).not.toBe(b.id);
    expect(again.createdAt).toBe(T0 + 1);
  });
});

describe("NatsSchedules: firing", () => {
  it("does not fire a paused schedule", async () => {
    const { jobs, enqueue } = recorder();
    const schedules = new NatsSchedules(kv, enqueue);
    const s = await schedules.upsert(input("paused.job", { paused: true }), T0);
    expect(await schedules.fireDue(fireSchedule, T0 + 1)).toBe(0);
    expect(jobs).toEqual([]);
    await schedules.update(s.id, { paused: false });
    expect(await schedules.fireDue(fireSchedule, T0 + 1)).toBe(1);
    expect(jobs).toHaveLength(1);
  });

  it("fires a due tick: next time, lastFiredAt, repeatLeft, the job; repeat exhausted ends it", async () => {
    const { jobs, enqueue } = recorder();
    const schedules = new NatsSchedules(kv, enqueue);
    const s = await schedules.upsert(
      input("repeat.job", { spec: { kind: "every", everyMs: 1_000 }, repeatLeft: 2, nextRunAt: T0 }),
      T0 - 1_000,
    );
    expect(await schedules.fireDue(fireSchedule, T0 - 1)).toBe(0);
    expect(await schedules.fireDue(fireSchedule, T0)).toBe(1);
    expect(await schedules.get(s.id)).toMatchObject({
      nextRunAt: T0 + 1_000,
      lastFiredAt: T0,
      repeatLeft: 1,
    });
    expect(jobs[0]).toMatchObject({
      handler: "repeat.job",
      label: "schedule:repeat.job",
      payload: s.payload,
    });
    expect(await raw(s.id)).toMatchObject({ pending: null });

    expect(await schedules.fireDue(fireSchedule, T0 + 1_500)).toBe(1);
    expect(await schedules.get(s.id)).toMatchObject({
      nextRunAt: null,
      lastFiredAt: T0 + 1_500,
      repeatLeft: 0,
    });
    expect(await schedules.fireDue(fireSchedule, T0 + 10 * HOUR)).toBe(0);
    expect(jobs).toHaveLength(2);
  });

  it("fires each tick exactly once with five processes racing, twenty ticks in a row", async () => {
    const { jobs, enqueue } = recorder();
    const racers = await Promise.all([1, 2, 3, 4, 5].map(() => instance(enqueue)));
    const s = await racers[0]!.upsert(input("tick.job", { spec: { kind: "every", everyMs: 1_000 } }), T0);
    const tickOf = new Map<string, number | null>();
    const fire = (schedule: ScheduleRecord, now: number) => {
      const firing = fireSchedule(schedule, now);
      tickOf.set(firing.job.id, schedule.nextRunAt);
      return firing;
    };
    let answered = 0;
    for (let tick = 0; tick < 20; tick++) {
      const now = T0 + tick * 1_000;
      const counts = await Promise.all(racers.map((r) => r.fireDue(fire, now)));
      answered += counts.reduce((x, y) => x + y, 0);
    }
    const ids = jobs.map((j) => j.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(jobs.map((j) => tickOf.get(j.id))).toEqual(Array.from({ length: 20 }, (_, i) => T0 + i * 1_000));
    expect(answered).toBe(20);
    expect(await racers[1]!.get(s.id)).toMatchObject({ nextRunAt: T0 + 20_000, lastFiredAt: T0 + 19_000 });
  });
});

describe("NatsSchedules: a winner that dies between the two phases", () => {
  /** An enqueue that fails its first call: the tick stays pending, as if its process had died. */
  function failingOnce(): { attempted: NewJob[]; enqueue: Enqueue } {
    const attempted: NewJob[] = [];
    return {
      attempted,
      enqueue: async (job) => {
        attempted.push(job);
        if (attempted.length === 1) throw new Error("connection lost");
      },
    };
  }

  it("is retried at once by its own process, and left alone by others within the grace", async () => {
    const dying = failingOnce();
    const schedules = new NatsSchedules(kv, dying.enqueue);
    const other = recorder();
    const otherProcess = await instance(other.enqueue);
    const s = await schedules.upsert(input("retry.job"), T0);

    await expect(schedules.fireDue(fireSchedule, T0)).rejects.toThrow("connection lost");
    // The tick is taken (it won't fire twice) and its job parked.
    expect(await schedules.get(s.id)).toMatchObject({ nextRunAt: T0 + HOUR, lastFiredAt: T0 });
    expect(await raw(s.id)).toMatchObject({ pending: { job: { id: dying.attempted[0]!.id } } });

    expect(await otherProcess.fireDue(fireSchedule, T0 + 1)).toBe(0);
    expect(other.jobs).toEqual([]);
    expect(await schedules.fireDue(fireSchedule, T0 + 2)).toBe(1);
    expect(dying.attempted.map((j) => j.id)).toEqual([dying.attempted[0]!.id, dying.attempted[0]!.id]);
    expect(dying.attempted[1]).toEqual(dying.attempted[0]);
    expect(await raw(s.id)).toMatchObject({ pending: null });
    expect(await schedules.fireDue(fireSchedule, T0 + 3)).toBe(0);
    expect(await otherProcess.fireDue(fireSchedule, T0 + PENDING_GRACE_MS)).toBe(0);
  });

  it("is completed exactly once by the processes racing after the grace", async () => {
    const dying = failingOnce();
    const dead = await instance(dying.enqueue);
    const s = await dead.upsert(input("takeover.job"), T0);
    await expect(dead.fireDue(fireSchedule, T0)).rejects.toThrow("connection lost");
    const parked = dying.attempted[0]!;

    const { jobs, enqueue } = recorder();
    const racers = await Promise.all([1, 2, 3, 4].map(() => instance(enqueue)));
    expect(await Promise.all(racers.map((r) => r.fireDue(fireSchedule, T0 + PENDING_GRACE_MS - 1)))).toEqual([
      0, 0, 0, 0,
    ]);
    const counts = await Promise.all(racers.map((r) => r.fireDue(fireSchedule, T0 + PENDING_GRACE_MS)));
    expect(counts.reduce((x, y) => x + y, 0)).toBe(1);
    expect(jobs).toEqual([parked]);
    expect(await raw(s.id)).toMatchObject({ pending: null });
    expect(await racers[0]!.get(s.id)).toMatchObject({ nextRunAt: T0 + HOUR, lastFiredAt: T0 });
  });

  it("keeps a pending job through a delete, until it is enqueued", async () => {
    const dying = failingOnce();
    const schedules = new NatsSchedules(kv, dying.enqueue);
    const s = await schedules.upsert(input("deleted.job"), T0);
    await expect(schedules.fireDue(fireSchedule, T0)).rejects.toThrow("connection lost");

    expect(await schedules.delete(s.id)).toBe(true);
    expect(await schedules.get(s.id)).toBeUndefined();
    expect(await schedules.list()).toEqual([]);
    expect(await raw(s.id)).toMatchObject({
      deleted: true,
      pending: { job: { id: dying.attempted[0]!.id } },
    });
    // The name is free at once, although the record waits for its job.
    expect((await schedules.upsert(input("deleted.job", { paused: true }), T0 + 1)).id).not.toBe(s.id);

    const { jobs, enqueue } = recorder();
    expect(await (await instance(enqueue)).fireDue(fireSchedule, T0 + PENDING_GRACE_MS)).toBe(1);
    expect(jobs).toEqual([dying.attempted[0]]);
    expect(await raw(s.id)).toBeNull();
    expect((await schedules.list()).map((x) => x.name)).toEqual(["deleted.job"]);
  });
});

describe("enqueueOnce", () => {
  const stored = new Map<string, NewJob>();
  const store = {
    enqueue: async (jobs: readonly NewJob[]) => {
      for (const job of jobs) {
        if (stored.has(job.id)) throw new Error(`a job with id ${job.id} exists`);
        stored.set(job.id, job);
      }
      return jobs.map((job) => ({ id: job.id, deduplicated: false }));
    },
    getJob: async (id: string) => (stored.has(id) ? ({ id } as JobRecord) : undefined),
  };

  it("takes a refusal for a stored id as done, and passes other failures on", async () => {
    const job = plainNewJob("once.job");
    await enqueueOnce(store)(job);
    await enqueueOnce(store)(job);
    expect([...stored.keys()]).toEqual([job.id]);
    const failing = { ...store, enqueue: async () => Promise.reject(new Error("store down")) };
    await expect(enqueueOnce(failing)(plainNewJob("other.job"))).rejects.toThrow("store down");
  });
});
