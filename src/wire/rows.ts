/**
 * The store's figures, its workers and schedules as RPC messages (src/gen/ferry/v1) and back: the
 * daemon sends them (`…ToWire`), `ferry/client` reads them (`…FromWire`). Both directions live
 * here and share what they copy as it is, so a field added to a row is added once and cannot be
 * sent and read two ways. Times go out as RFC 3339 strings, counters as int64; a field the library
 * holds as null is left out. Imports types only: `ferry/client` loads this without the daemon.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ScheduleView } from "../api/schedules.js";
import type { JobState } from "../core/job.js";
import type {
  Worker as PbWorker,
  StatsResponse,
  StatsResponseSchema,
  WorkerSchema,
} from "../gen/ferry/v1/admin_pb.js";
import type { Schedule as PbSchedule, ScheduleSchema } from "../gen/ferry/v1/schedules_pb.js";
import type { StoreStats, WorkerInfo } from "../store/store.js";

/** The store's counters: numbers in the library, int64 on the wire. */
const COUNTERS = ["launched", "completed", "failed", "cancelled", "timedOut"] as const;
type Counters<T> = Record<(typeof COUNTERS)[number], T>;

const counters = <A, B>(from: Counters<A>, convert: (value: A) => B): Counters<B> =>
  Object.fromEntries(COUNTERS.map((name) => [name, convert(from[name])])) as Counters<B>;

export function statsToWire(stats: StoreStats): MessageInitShape<typeof StatsResponseSchema> {
  return {
    queues: Object.entries(stats.byQueue).map(([queue, states]) => ({
      queue,
      states: Object.fromEntries(Object.entries(states).map(([state, n]) => [state, BigInt(n ?? 0)])),
    })),
    ...counters(stats, BigInt),
    avgRunMs: stats.avgRunMs,
  };
}

export function statsFromWire(stats: StatsResponse): StoreStats {
  const byQueue: Record<string, Partial<Record<JobState, number>>> = {};
  for (const { queue, states } of stats.queues) {
    byQueue[queue] = Object.fromEntries(Object.entries(states).map(([state, n]) => [state, Number(n)]));
  }
  return { byQueue, ...counters(stats, Number), avgRunMs: stats.avgRunMs };
}

/** What a worker row carries the same way in both directions. */
const workerFields = (worker: WorkerInfo | PbWorker) => ({
  id: worker.id,
  name: worker.name,
  host: worker.host,
  pid: worker.pid,
  queues: [...worker.queues],
  running: worker.running,
});

export const workerToWire = (worker: WorkerInfo): MessageInitShape<typeof WorkerSchema> => ({
  ...workerFields(worker),
  startedAt: new Date(worker.startedAt).toISOString(),
  lastHeartbeatAt: new Date(worker.lastHeartbeatAt).toISOString(),
});

export const workerFromWire = (worker: PbWorker): WorkerInfo => ({
  ...workerFields(worker),
  startedAt: Date.parse(worker.startedAt),
  lastHeartbeatAt: Date.parse(worker.lastHeartbeatAt),
});

/** A schedule as sent; its owner only `withOwner` (the daemon sends it to admins, as a job's). */
export function scheduleToWire(
  view: ScheduleView,
  withOwner = false,
): MessageInitShape<typeof ScheduleSchema> {
  return {
    id: view.id,
    name: view.name,
    handler: view.handler,
    ...(view.cron === null ? {} : { cron: view.cron }),
    ...(view.tz === null ? {} : { tz: view.tz }),
    ...(view.everyMs === null ? {} : { everyMs: BigInt(view.everyMs) }),
    ...(view.repeatLeft === null ? {} : { repeatLeft: view.repeatLeft }),
    paused: view.paused,
    ...(view.pausedReason === null ? {} : { pausedReason: view.pausedReason }),
    ...(view.nextRunAt === null ? {} : { nextRunAt: view.nextRunAt.toISOString() }),
    ...(view.lastFiredAt === null ? {} : { lastFiredAt: view.lastFiredAt.toISOString() }),
    ...(withOwner && view.owner !== null ? { owner: view.owner } : {}),
  };
}

/** An RFC 3339 time as a Date; absent or empty is null. */
export const dateFromWire = (text: string | undefined): Date | null =>
  text === undefined || text === "" ? null : new Date(text);

export function scheduleFromWire(schedule: PbSchedule): ScheduleView {
  return {
    id: schedule.id,
    name: schedule.name,
    handler: schedule.handler,
    cron: schedule.cron ?? null,
    tz: schedule.tz ?? null,
    everyMs: schedule.everyMs === undefined ? null : Number(schedule.everyMs),
    repeatLeft: schedule.repeatLeft ?? null,
    paused: schedule.paused,
    pausedReason: schedule.pausedReason ?? null,
    nextRunAt: dateFromWire(schedule.nextRunAt),
    lastFiredAt: dateFromWire(schedule.lastFiredAt),
    owner: schedule.owner ?? null,
  };
}
