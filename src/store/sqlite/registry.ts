import type { GroupRate } from "../../core/group-rate.js";
import { type QueueRow, toQueueInfo, toWorkerInfo, type WorkerRow } from "../rows.js";
import type { QueueInfo, WorkerInfo } from "../store.js";
import type { Db } from "./connection.js";

/** Queue settings (pause, group limits) and the worker registry, as prepared statements. */
export function makeRegistry(db: Db) {
  const pause = db.prepare(
    "INSERT INTO queues (name, paused) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
  );
  const groupLimit = db.prepare(
    `INSERT INTO queues (name, group_concurrency) VALUES (?, ?)
     ON CONFLICT (name) DO UPDATE SET group_concurrency = excluded.group_concurrency`,
  );
  const groupRate = db.prepare(
    `INSERT INTO queues (name, group_rate_limit, group_rate_period_ms) VALUES (?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET group_rate_limit = excluded.group_rate_limit,
       group_rate_period_ms = excluded.group_rate_period_ms`,
  );
  // Counts of windows that have ended count as zero: a group idle for a window needs no row.
  const endedRates = db.prepare(
    `DELETE FROM group_rates WHERE (queue, group_key) IN (
       SELECT r.queue, r.group_key FROM group_rates r LEFT JOIN queues q ON q.name = r.queue
       WHERE q.group_rate_period_ms IS NULL OR (r.window_no + 1) * q.group_rate_period_ms <= ?
       LIMIT ?)`,
  );
  const queues = db.prepare("SELECT * FROM queues ORDER BY name");
  const removeWorker = db.prepare("DELETE FROM workers WHERE id = ?");
  const workers = db.prepare("SELECT * FROM workers ORDER BY started_at");
  return {
    setPaused: (queue: string, paused: boolean) => pause.run(queue, paused ? 1 : 0),
    setGroupConcurrency: (queue: string, limit: number | null) => groupLimit.run(queue, limit),
    setGroupRate: (queue: string, rate: GroupRate | null) =>
      groupRate.run(queue, rate?.limit ?? null, rate?.periodMs ?? null),
    pruneEndedRates: (now: number, limit: number): number => endedRates.run(now, limit).changes,
    listQueues: (): QueueInfo[] => (queues.all() as QueueRow[]).map(toQueueInfo),
    removeWorker: (workerId: string) => removeWorker.run(workerId),
    listWorkers: (): WorkerInfo[] => (workers.all() as WorkerRow[]).map(toWorkerInfo),
  };
}
