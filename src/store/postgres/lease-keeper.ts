import { LeaseThread } from "../lease-thread.js";
import type { PgKeeperData } from "./lease-keeper-thread.js";

/**
 * A thread with its own connection that keeps a heartbeating worker's leases alive while the
 * event loop is stalled (a synchronous handler starves the heartbeat timer, and the job would be
 * rescued and run twice: BullMQ's "could not renew lock"). Each heartbeat hands the worker's
 * leases over; the thread (lease-keeper-thread.ts) renews them only when a heartbeat is clearly
 * late, and for at most `until` (the last heartbeat + 2 min): a process stuck longer loses its
 * jobs to the rescuer, as a dead one does. A frozen or killed process freezes or kills this
 * thread with it.
 *
 * Same protocol as the SQLite store's background thread (sqlite/background-thread.ts).
 */
export class LeaseKeeper extends LeaseThread {
  constructor(config: { readonly connectionString?: string | undefined }, schema: string) {
    const data: Omit<PgKeeperData, "loopBeat"> = { url: config.connectionString, schema, tickMs: 200 };
    super(new URL("./lease-keeper-thread.js", import.meta.url), data);
  }
}
