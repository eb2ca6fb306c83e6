/**
 * The PostgreSQL lease keeper's thread (lease-keeper.ts): its own connection, opened on first
 * need and again after one breaks, renewing a late worker's leases in one statement.
 */
import { workerData } from "node:worker_threads";
import pg from "pg";
import { type HeldLeases, type LeaseKeeperData, runLeaseKeeper } from "../lease-book.js";

export interface PgKeeperData extends LeaseKeeperData {
  readonly url: string | undefined;
  /** The store's schema, as its statements name it. */
  readonly schema: string;
}

const data = workerData as PgKeeperData;
let client: pg.Client | undefined;
let connecting = false;

async function connection(): Promise<pg.Client | undefined> {
  if (client !== undefined) return client;
  if (connecting) return undefined;
  connecting = true;
  const next = new pg.Client({
    connectionString: data.url,
    query_timeout: 5000,
    application_name: "ferry-lease-keeper",
  });
  next.on("error", () => {
    if (client === next) client = undefined;
  });
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

async function renewLeases(entry: HeldLeases): Promise<boolean> {
  const db = await connection();
  if (db === undefined) return false;
  try {
    await db.query(
      `UPDATE ${data.schema}.jobs j SET lease_expires_at = ${data.schema}.ms_now() + $3 ` +
        "FROM unnest($1::uuid[], $2::bigint[]) AS x(id, fence) WHERE j.id = x.id AND j.fence = x.fence AND j.state = 'running'",
      [entry.leases.map((l) => l[0]), entry.leases.map((l) => l[1]), entry.leaseMs],
    );
    return true;
  } catch {
    // The next tick tries again (on a new connection if this one broke), well within the lease.
    if (client === db) {
      client = undefined;
      db.end().catch(() => {});
    }
    return false;
  }
}

runLeaseKeeper({
  renewLeases,
  closeStore: async () => {
    if (client !== undefined) await client.end();
  },
});
