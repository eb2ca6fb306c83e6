import Database from "better-sqlite3";
import { ErrorCode, FerryError } from "../../core/errors.js";
import { MIGRATIONS } from "./schema.js";

export type Db = Database.Database;
/** A prepared statement taking positional parameters. */
export type Stmt = Database.Statement<unknown[], unknown>;

export interface SqliteOptions {
  /** synchronous=FULL: survive power loss at the cost of an fsync per commit. Default false (NORMAL). */
  readonly durable?: boolean;
  /** How long one statement waits for another process's lock before we back off and retry. */
  readonly busyTimeoutMs?: number;
  /**
   * How long the background thread keeps renewing a worker's leases after its last heartbeat,
   * so a stalled event loop (a synchronous handler) does not lose its jobs. Default 2 minutes;
   * 0 turns it off.
   */
  readonly leaseKeeperMs?: number;
}

export function openDatabase(path: string, options: SqliteOptions = {}): Db {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${options.durable ? "FULL" : "NORMAL"}`);
  db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 2_000}`);
  db.pragma("foreign_keys = OFF");
  // Keep a bounded page cache: memory must not grow with the backlog.
  db.pragma("cache_size = -16000");
  return db;
}

export function migrate(db: Db): number {
  db.exec("CREATE TABLE IF NOT EXISTS ferry_schema (version INTEGER NOT NULL)");
  const step = db.transaction(() => {
    const row = db.prepare("SELECT version FROM ferry_schema").get() as { version: number } | undefined;
    let version = row?.version ?? 0;
    if (row === undefined) db.prepare("INSERT INTO ferry_schema (version) VALUES (0)").run();
    while (version < MIGRATIONS.length) {
      db.exec(MIGRATIONS[version]!);
      version += 1;
      db.prepare("UPDATE ferry_schema SET version = ?").run(version);
    }
    return version;
  });
  return step.immediate();
}

const isBusy = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || code === "SQLITE_BUSY_SNAPSHOT";
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs a write transaction (BEGIN IMMEDIATE). When another process holds the lock past
 * busy_timeout, backs off and tries again instead of failing: SQLITE_BUSY must never become a
 * job failure. Gives up with FERRY_STORE_UNAVAILABLE after `patienceMs`.
 */
export async function writeTx<T>(db: Db, work: () => T, patienceMs = 60_000): Promise<T> {
  if (!db.open) throw new FerryError(ErrorCode.StoreUnavailable, "the store is closed");
  const run = db.transaction(work);
  const started = Date.now();
  for (let delay = 5; ; delay = Math.min(delay * 2, 250)) {
    try {
      return run.immediate();
    } catch (error) {
      if (!isBusy(error)) throw error;
      if (Date.now() - started > patienceMs) {
        throw new FerryError(ErrorCode.StoreUnavailable, "the SQLite database stayed locked", {
          cause: error,
        });
      }
      await sleep(delay * (0.5 + Math.random()));
    }
  }
}

/** Reads retry on SQLITE_BUSY too (a WAL checkpoint can briefly hold them off). */
export async function readRetry<T>(work: () => T, patienceMs = 60_000): Promise<T> {
  const started = Date.now();
  for (let delay = 5; ; delay = Math.min(delay * 2, 250)) {
    try {
      return work();
    } catch (error) {
      if (!isBusy(error) || Date.now() - started > patienceMs) throw error;
      await sleep(delay);
    }
  }
}
