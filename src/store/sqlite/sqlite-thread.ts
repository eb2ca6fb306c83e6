/**
 * The SQLite store's background thread (background-thread.ts): its own connection, which renews a
 * worker's leases once its heartbeat is clearly late and checkpoints the WAL every
 * `checkpointEvery` ticks.
 */
import { workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { type HeldLeases, LeaseBook, type LeaseMessage, threadPort } from "../lease-book.js";

export interface SqliteThreadData {
  readonly path: string;
  readonly tickMs: number;
  readonly checkpointEvery: number;
}

const data = workerData as SqliteThreadData;
const port = threadPort();
const db = new Database(data.path);
db.pragma("busy_timeout = 1000");
const renew = db.prepare(
  "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND fence = ? AND state = 'running'",
);
const renewAll = db.transaction((entry: HeldLeases, now: number) => {
  for (const [id, fence] of entry.leases) renew.run(now + entry.leaseMs, id, fence);
});
const book = new LeaseBook();
let ticks = 0;

function tick(): void {
  const now = Date.now();
  for (const entry of book.late(now)) {
    try {
      renewAll(entry, now);
      entry.renewedAt = now;
    } catch {
      // Busy: the next tick tries again, well within the lease.
    }
  }
  if (++ticks % data.checkpointEvery === 0) {
    try {
      db.pragma("wal_checkpoint(PASSIVE)");
    } catch {
      // Busy or locked: the next round tries again.
    }
  }
}

const timer = setInterval(tick, data.tickMs);
port.on("message", (message: LeaseMessage) => {
  if (message.type === "leases") book.apply(message);
  else if (message.type === "stop") {
    clearInterval(timer);
    try {
      db.pragma("wal_checkpoint(PASSIVE)");
    } catch {
      // Busy or locked: the connection closes all the same.
    }
    db.close();
    port.close();
  }
});
