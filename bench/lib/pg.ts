/**
 * What the PostgreSQL drivers share: the server URL, a fail-fast probe, unique schema names and
 * dropping a schema through a client of its own.
 */
import pg from "pg";
import { errorText } from "./time.js";

/**
 * Trust auth on the local server; BENCH_PG_URL points elsewhere. The user is spelled out (as in
 * test/conformance/stores.ts) because `pg` otherwise takes $USER, which is unset under some runners.
 */
export const PG_URL = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const CONNECT_TIMEOUT_MS = 2000;

/** The URL without its password, for messages and notes. */
export function pgLabel(url = PG_URL): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.href;
  } catch {
    return "(unparsable BENCH_PG_URL)";
  }
}

/** A client that gives up connecting after 2 s instead of waiting on the OS timeout. */
export function pgClient(): pg.Client {
  return new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
}

/** Rejects with a clear message when the server is down or refuses us (createDriver calls this first). */
export async function probePostgres(): Promise<void> {
  const client = pgClient();
  // An idle client can emit 'error' (server restart); without a listener that would crash the run.
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("SELECT 1");
  } catch (err) {
    throw new Error(`PostgreSQL ${pgLabel()}: cannot connect (BENCH_PG_URL to change): ${errorText(err)}`);
  } finally {
    await client.end().catch(() => {});
  }
}

let counter = 0;

/**
 * A fresh schema name: lower-case letters, digits and _ only (Ferry's store accepts nothing else),
 * well under PostgreSQL's 63-byte identifier limit, unique per process and call.
 */
export function uniqueSchema(prefix: string): string {
  return `bench_${prefix}_${process.pid}_${Date.now().toString(36)}_${++counter}`;
}

/** Runs `work` on a short-lived client of its own (not a driver's pool, which may already be closed). */
export async function withPgClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = pgClient();
  client.on("error", () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** DROP SCHEMA … CASCADE: everything a driver created lives in its own schema. */
export async function dropSchema(schema: string): Promise<void> {
  await withPgClient((client) =>
    client.query(`DROP SCHEMA IF EXISTS ${client.escapeIdentifier(schema)} CASCADE`),
  );
}
