import { createRequire } from "node:module";
import { LeaseThread, leaseKeeperSource } from "../lease-thread.js";

/**
 * A thread with its own connection that keeps a heartbeating worker's leases alive while the
 * event loop is stalled (a synchronous handler starves the heartbeat timer, and the job would be
 * rescued and run twice: BullMQ's "could not renew lock"). Each heartbeat hands the worker's
 * leases over; the thread renews them only when a heartbeat is clearly late, and for at most
 * `until` (the last heartbeat + 2 min): a process stuck longer loses its jobs to the rescuer, as
 * a dead one does. A frozen or killed process freezes or kills this thread with it.
 *
 * Same protocol as the SQLite store's background thread (sqlite/background-thread.ts).
 */
const STORE_PART = `
const pg = require(workerData.driver);
let client;
let connecting = false;
async function connection() {
  if (client !== undefined) return client;
  if (connecting) return undefined;
  connecting = true;
  const next = new pg.Client({ connectionString: workerData.url, query_timeout: 5000, application_name: "ferry-lease-keeper" });
  next.on("error", () => { if (client === next) client = undefined; });
  try {
    await next.connect();
    client = next;
  } catch {
    next.end().catch(() => {});
  } finally {
    connecting = false;
  }
  return client;
}
async function renewLeases(entry) {
  const db = await connection();
  if (db === undefined) return false;
  try {
    await db.query(
      "UPDATE " + workerData.schema + ".jobs j SET lease_expires_at = " + workerData.schema + ".ms_now() + $3 " +
      "FROM unnest($1::uuid[], $2::bigint[]) AS x(id, fence) WHERE j.id = x.id AND j.fence = x.fence AND j.state = 'running'",
      [entry.leases.map((l) => l[0]), entry.leases.map((l) => l[1]), entry.leaseMs],
    );
    return true;
  } catch {
    // The next tick tries again (on a new connection if this one broke), well within the lease.
    if (client === db) { client = undefined; db.end().catch(() => {}); }
    return false;
  }
}
async function closeStore() {
  if (client !== undefined) await client.end();
}
`;

export class LeaseKeeper extends LeaseThread {
  constructor(config: { readonly connectionString?: string | undefined }, schema: string) {
    const driver = createRequire(import.meta.url).resolve("pg");
    super(leaseKeeperSource(STORE_PART), { url: config.connectionString, schema, driver, tickMs: 200 });
  }
}
