import pg from "pg";
import { ErrorCode, FerryError, invalidArgument } from "../../core/errors.js";
import { MIGRATIONS, SCHEMA_NAME } from "./schema.js";

export interface PostgresOptions {
  /** Schema holding Ferry's tables. Default `ferry`, or `?schema=` in the URL. */
  readonly schema?: string;
  /** Pool size. Default 10. */
  readonly poolSize?: number;
  /**
   * A query not answered within this long fails and its connection is dropped: how a half-open
   * connection (peer gone, no FIN) is noticed. Default 15 s.
   */
  readonly queryTimeoutMs?: number;
  /**
   * How long a thread keeps renewing a worker's leases after its last heartbeat, so a stalled
   * event loop does not lose its jobs. Default 2 minutes; 0 turns it off.
   */
  readonly leaseKeeperMs?: number;
  /**
   * How often the LISTEN connection is pinged; a dead or half-open one is replaced within about
   * two intervals. Default 5 s.
   */
  readonly listenerPingMs?: number;
}

export interface ConnectionSettings {
  readonly config: pg.PoolConfig;
  readonly schema: string;
}

/** int8 (bigint) as a JS number: Ferry's bigints are epoch ms, fences and counters, all < 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

/** Splits Ferry's own `schema` parameter off the URL; the rest goes to `pg` as is. */
export function connectionSettings(url: string, options: PostgresOptions = {}): ConnectionSettings {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidArgument("postgres store URL is not a valid URL");
  }
  const schema = options.schema ?? parsed.searchParams.get("schema") ?? "ferry";
  parsed.searchParams.delete("schema");
  if (!SCHEMA_NAME.test(schema)) {
    throw invalidArgument("postgres schema must be a plain lower-case name (letters, digits, _)");
  }
  const queryTimeoutMs = options.queryTimeoutMs ?? 15_000;
  return {
    schema,
    config: {
      connectionString: parsed.toString(),
      max: options.poolSize ?? 10,
      // Opening a connection to a peer that no longer answers must not outlast the query timeout
      // either: a half-open server would otherwise hold each call for 10 s per connection attempt.
      connectionTimeoutMillis: Math.min(10_000, queryTimeoutMs),
      idleTimeoutMillis: 30_000,
      query_timeout: queryTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: "ferry",
      // Ferry's statements are prepared once per connection and their plans don't depend on the
      // values (the claim always walks jobs_claim): plan once, not at every execution (a custom
      // plan of the worker's round costs more than running it). That one plan is made with the
      // statistics of the moment, and a jobs table grows from empty to millions of rows faster
      // than autovacuum re-analyzes it: planned on a small table, the round scanned the whole table
      // per claim (50k jobs drained at 3k/s instead of 13k/s). Every hot statement has an index
      // path, so sequential scans are priced out rather than left to stale statistics.
      options: "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off",
      types,
    },
  };
}

const TRANSIENT_SQLSTATE = new Set(["40001", "40P01"]);

/** Errors that mean the server or the connection is gone, not that the query was wrong. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : "";
  if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03") return true;
  if (["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND"].includes(code))
    return true;
  const message = typeof e?.message === "string" ? e.message : "";
  return /Connection terminated|Query read timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(
    message,
  );
}

/** Store errors callers see: a lost server is FERRY_STORE_UNAVAILABLE; our own FerryErrors pass. */
export function storeError(error: unknown): Error {
  if (error instanceof FerryError) return error;
  if (isConnectionError(error)) {
    return new FerryError(ErrorCode.StoreUnavailable, "PostgreSQL is unreachable", { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}

export type Client = pg.PoolClient;

/**
 * Runs `work` in a transaction on one pooled connection. Serialization failures and deadlocks
 * are retried (the transaction changed nothing); a lost connection is not, because a COMMIT that
 * may have happened must not run twice: the caller sees FERRY_STORE_UNAVAILABLE.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: Client) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let client: Client;
    try {
      client = await pool.connect();
    } catch (error) {
      throw storeError(error);
    }
    let broken = false;
    // A checked-out client has no 'error' listener of the pool's: without ours, a backend killed
    // between two statements (FATAL with no query active, then the socket's end) is an uncaught
    // 'error' event that crashes the process.
    const onError = () => {
      broken = true;
    };
    client.on("error", onError);
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      broken ||= isConnectionError(error);
      if (!broken) await client.query("ROLLBACK").catch(() => (broken = true));
      const code = (error as { code?: unknown }).code;
      if (!broken && typeof code === "string" && TRANSIENT_SQLSTATE.has(code) && attempt < 5) {
        await new Promise((resolve) => setTimeout(resolve, 5 * attempt * Math.random()));
        continue;
      }
      throw storeError(error);
    } finally {
      client.off("error", onError);
      // A connection that failed mid-transaction is dropped, never handed to the next caller.
      client.release(broken);
    }
  }
}

/**
 * One statement outside a transaction (a QueryConfig may name it, to be prepared once per
 * connection); reads are retried once on a lost connection.
 */
export async function query<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  statement: string | pg.QueryConfig,
  values: unknown[] = [],
  retryOnLostConnection = false,
): Promise<pg.QueryResult<R>> {
  const run = () =>
    typeof statement === "string" ? pool.query<R>(statement, values) : pool.query<R>(statement);
  try {
    return await run();
  } catch (error) {
    if (retryOnLostConnection && isConnectionError(error)) {
      try {
        return await run();
      } catch (again) {
        throw storeError(again);
      }
    }
    throw storeError(error);
  }
}

/** Creates or upgrades the schema under an advisory lock; answers the version. */
export async function migrate(pool: pg.Pool, schema: string): Promise<number> {
  const client = await pool.connect().catch((error: unknown) => {
    throw storeError(error);
  });
  let broken = false;
  const onError = () => {
    broken = true;
  };
  client.on("error", onError);
  try {
    await client.query("SELECT pg_advisory_lock(hashtext($1))", [`ferry-migrate:${schema}`]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_version (version integer NOT NULL)`);
      const row = await client.query<{ version: number }>(`SELECT version FROM ${schema}.schema_version`);
      let version = row.rows[0]?.version ?? 0;
      if (row.rows.length === 0) await client.query(`INSERT INTO ${schema}.schema_version VALUES (0)`);
      while (version < MIGRATIONS.length) {
        await client.query("BEGIN");
        try {
          await client.query(MIGRATIONS[version]!(schema));
          version += 1;
          await client.query(`UPDATE ${schema}.schema_version SET version = $1`, [version]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw error;
        }
      }
      return version;
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext($1))", [`ferry-migrate:${schema}`]);
    }
  } catch (error) {
    broken ||= isConnectionError(error);
    throw storeError(error);
  } finally {
    client.off("error", onError);
    client.release(broken);
  }
}
