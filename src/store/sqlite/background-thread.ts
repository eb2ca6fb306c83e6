import { LeaseThread } from "../lease-thread.js";
import type { SqliteThreadData } from "./sqlite-thread.js";

/**
 * One thread per SQLite store (sqlite-thread.ts), with its own connection, for the two jobs that
 * must not wait on the event loop:
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
const TICK_MS = 100;

export class BackgroundThread extends LeaseThread {
  constructor(path: string, options: { checkpointMs?: number } = {}) {
    const checkpointEvery = Math.max(1, Math.round((options.checkpointMs ?? 200) / TICK_MS));
    const data: SqliteThreadData = { path, tickMs: TICK_MS, checkpointEvery };
    super(new URL("./sqlite-thread.js", import.meta.url), data);
  }
}
