import { createRequire } from "node:module";
import { LeaseThread } from "../lease-thread.js";

/**
 * One thread per SQLite store, with its own connection, for the two jobs that must not wait on
 * the event loop:
 *
 * - WAL checkpoints copy committed pages into the database file and fsync it: milliseconds of
 *   blocking I/O that SQLite would otherwise run inside whichever commit crosses the threshold.
 *   The main connection turns auto-checkpointing off; this thread checkpoints (PASSIVE: never
 *   blocking writers or readers).
 * - Lease renewal. A handler that hogs the event loop (synchronous work) starves the worker's
 *   heartbeat timer, and its jobs would be rescued and run twice (BullMQ's "could not renew
 *   lock"). Each heartbeat hands its leases to this thread, which keeps renewing them on its own
 *   clock for at most `stallMs` after that heartbeat: a stall shorter than that costs nothing; a
 *   process stuck for longer loses its jobs to the rescuer, as a dead one does. A frozen or killed
 *   process freezes or kills this thread with it, so leases still expire then.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma("busy_timeout = 1000");
const renew = db.prepare(
  "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND fence = ? AND state = 'running'",
);
const held = new Map(); // worker id -> { leases, leaseMs, until, renewedAt }
const renewAll = db.transaction((entry, now) => {
  for (const [id, fence] of entry.leases) renew.run(now + entry.leaseMs, id, fence);
});
let ticks = 0;
const tick = () => {
  const now = Date.now();
  for (const [worker, entry] of held) {
    if (now > entry.until) {
      held.delete(worker);
      continue;
    }
    // Only when a heartbeat is clearly late (the healthy main thread renews every third of a lease).
    if (now - entry.renewedAt < entry.leaseMs / 2) continue;
    try {
      renewAll(entry, now);
      entry.renewedAt = now;
    } catch {
      // Busy: the next tick tries again, well within the lease.
    }
  }
  if (++ticks % workerData.checkpointEvery === 0) {
    try {
      db.pragma("wal_checkpoint(PASSIVE)");
    } catch {
      // Busy or locked: the next round tries again.
    }
  }
};
const timer = setInterval(tick, workerData.tickMs);
parentPort.on("message", (message) => {
  if (message.type === "leases") {
    const entry = held.get(message.worker);
    if (message.forget) {
      held.delete(message.worker);
    } else if (message.add) {
      // Newly claimed jobs of a worker that heartbeats: kept from the claim on. Claims by anything
      // that never heartbeated (a bare Store user) are left to expire as the contract says.
      if (entry !== undefined) {
        entry.leases.push(...message.leases);
        entry.until = message.until;
      }
    } else {
      held.set(message.worker, { leases: message.leases, leaseMs: message.leaseMs, until: message.until, renewedAt: Date.now() });
    }
  } else if (message.type === "stop") {
    clearInterval(timer);
    try {
      db.pragma("wal_checkpoint(PASSIVE)");
    } catch {}
    db.close();
    parentPort.close();
  }
});
`;

const TICK_MS = 100;

export class BackgroundThread extends LeaseThread {
  constructor(path: string, options: { checkpointMs?: number } = {}) {
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    const checkpointEvery = Math.max(1, Math.round((options.checkpointMs ?? 200) / TICK_MS));
    super(THREAD_SOURCE, { path, driver, tickMs: TICK_MS, checkpointEvery });
  }
}
