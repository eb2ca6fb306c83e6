/**
 * Plumbing for the tests that disrupt the machine's PostgreSQL server itself: restart it, kill its
 * backends, freeze connections. They run alone (vitest.disruptive.config.ts), after the main suite.
 *
 * Unreachable PostgreSQL fails these tests, never skips them; and whatever happens, the server is
 * started again afterwards (`ensureServerUp`).
 */
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { promisify } from "node:util";
import pg from "pg";
import {
  ErrorCode,
  type Ferry,
  getSerializer,
  type Handle,
  type JobStatus,
  type LaunchedHandle,
} from "../../src/index.js";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { freshPgSchema, PG_URL } from "../conformance/stores.js";
import {
  type Audit,
  audit,
  type Expected,
  type FaultStore,
  FIXED_RETRY,
  type LedgerEntry,
} from "../faults/helpers.js";
import { eventually, sleep } from "../helpers/temp.js";

const run = promisify(execFile);

export { PG_URL };

/** A plain connection to the test database (not a Ferry one: no `ferry…` application_name). */
export async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Throws (the test fails, it is not skipped) when PostgreSQL does not answer. */
export async function requirePostgres(): Promise<void> {
  try {
    await admin((c) => c.query("SELECT 1"));
  } catch (error) {
    throw new Error(`PostgreSQL at ${PG_URL} is unreachable: ${String(error)}`, { cause: error });
  }
}

const cluster = (): string[] => {
  const versions = readdirSync("/etc/postgresql");
  if (versions.length !== 1) throw new Error(`expected one cluster version in /etc/postgresql: ${versions}`);
  return ["--skip-systemctl-redirect", versions[0]!, "main"];
};

async function isReady(): Promise<boolean> {
  try {
    await run("pg_isready", ["-h", "127.0.0.1", "-t", "3"], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** `pg_ctlcluster … restart -m immediate`: every backend dies at once, as in a crash. Answers when it began and when the server answered again. */
export async function restartServer(): Promise<{ startedAt: number; backAt: number }> {
  const startedAt = Date.now();
  await run("pg_ctlcluster", [...cluster(), "restart", "-m", "immediate"], { timeout: 60_000 });
  await eventually(isReady, "PostgreSQL to accept connections after the restart", 60_000);
  return { startedAt, backAt: Date.now() };
}

/** Starts the server if it does not answer (afterEach/afterAll: never leave it stopped). */
export async function ensureServerUp(): Promise<void> {
  if (await isReady()) return;
  await run("pg_ctlcluster", [...cluster(), "start"], { timeout: 60_000 }).catch(() => undefined);
  await eventually(isReady, "PostgreSQL to accept connections", 60_000);
}

/**
 * The query, `pg_terminate_backend` of every `ferry%` backend but our own, narrowed to
 * this test's application_name so that other people's Ferry connections on this machine are left
 * alone. Answers how many backends it terminated.
 */
export async function terminateFerryBackends(applicationName: string): Promise<number> {
  return admin(async (c) => {
    const killed = await c.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
       WHERE application_name LIKE 'ferry%' AND pid <> pg_backend_pid() AND application_name = $1`,
      [applicationName],
    );
    return killed.rows.filter((r) => r.ok).length;
  });
}

/**
 * Kills, for up to `forMs`, each of this test's backends caught between two statements of a
 * transaction ('idle in transaction'): the moment when a client holds a connection but has no
 * query running on it, which random kills rarely hit. Answers how many it killed.
 */
export async function terminateMidTransaction(applicationName: string, forMs: number): Promise<number> {
  return admin(async (c) => {
    let killed = 0;
    const deadline = Date.now() + forMs;
    while (Date.now() < deadline) {
      const rows = await c.query<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
         WHERE application_name = $1 AND state = 'idle in transaction' AND pid <> pg_backend_pid()`,
        [applicationName],
      );
      killed += rows.rows.filter((r) => r.ok).length;
      await sleep(1);
    }
    return killed;
  });
}

/**
 * A fault-test store whose connections all carry the schema name as application_name (it starts
 * with `ferry`), so a test can find and kill exactly its own backends: pools, LISTEN connections
 * and lease-keeper threads, in every process.
 */
export function taggedPgStore(): FaultStore {
  return {
    name: "postgres",
    async fresh() {
      const { url, schema, drop } = freshPgSchema();
      return { url: `${url}&application_name=${schema}`, cleanup: drop };
    },
  };
}

export const schemaOf = (url: string): string => new URL(url).searchParams.get("schema")!;

/** The LISTEN connections of this application name: backends whose last query was LISTEN or the ping. */
export async function listenerBackends(
  applicationName: string,
): Promise<{ pid: number; backendStart: number; query: string }[]> {
  return admin(async (c) => {
    const rows = await c.query<{ pid: number; backend_start: Date; query: string }>(
      `SELECT pid, backend_start, query FROM pg_stat_activity
       WHERE application_name = $1 AND (query LIKE 'LISTEN %' OR query = 'SELECT 1')`,
      [applicationName],
    );
    return rows.rows.map((r) => ({ pid: r.pid, backendStart: r.backend_start.getTime(), query: r.query }));
  });
}

/** Jobs by state, and running ones whose lease is gone (expired, or no lease at all). */
export async function jobStates(
  schema: string,
): Promise<{ byState: Record<string, number>; runningWithoutLease: string[] }> {
  return admin(async (c) => {
    const counts = await c.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM ${schema}.jobs GROUP BY state`,
    );
    const stuck = await c.query<{ id: string }>(
      `SELECT id FROM ${schema}.jobs WHERE state = 'running'
         AND (lease_expires_at IS NULL OR lease_expires_at < ${schema}.ms_now() OR worker_id IS NULL)`,
    );
    return {
      byState: Object.fromEntries(counts.rows.map((r) => [r.state, r.n])),
      runningWithoutLease: stuck.rows.map((r) => r.id),
    };
  });
}

const isUnavailable = (error: unknown) =>
  (error as { code?: unknown } | null)?.code === ErrorCode.StoreUnavailable;

/** Waits for all handles to finish, going on through FERRY_STORE_UNAVAILABLE while the server is away. */
export async function drainThrough(ferry: Ferry, handles: readonly Handle[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await ferry.drain(handles, { timeout: Math.max(1, deadline - Date.now()) });
    } catch (error) {
      if (!isUnavailable(error) || Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

/**
 * Launches a job every `everyMs` until stopped. A launch that fails must fail with
 * FERRY_STORE_UNAVAILABLE (it was not acknowledged, so nothing is promised about it); any other
 * error is collected in `unexpected` for the test to fail on.
 */
export function launchStream(ferry: Ferry, payload: unknown, everyMs: number) {
  const acknowledged: { handle: LaunchedHandle; at: number }[] = [];
  const refused: string[] = [];
  const unexpected: unknown[] = [];
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const began = Date.now();
      try {
        const handle = await ferry.launch("fault.sleep", payload, { attempts: 20, ...FIXED_RETRY });
        acknowledged.push({ handle, at: Date.now() });
      } catch (error) {
        if (isUnavailable(error)) refused.push(String(error));
        else unexpected.push(error);
      }
      await sleep(Math.max(0, everyMs - (Date.now() - began)));
    }
  })();
  return {
    acknowledged,
    refused,
    unexpected,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

const REFUSED = "the holder's completion was refused";
const NOT_YET = /the holder of fence \d+ wrote no completion/;

/**
 * The fault tests' audit, with one allowance a lost connection makes: a COMMIT whose answer never
 * came back. The worker heard FERRY_STORE_UNAVAILABLE, keeps the outcome and sends it again;
 * the store refuses the copy (the job is no longer running) and the ledger only shows that
 * refusal. Such a refusal is excused only when the stored result is the holder's own (the fault
 * handlers return `{ pid, attempt }`): the first delivery did apply. And since the worker re-sends
 * after a back-off, the audit is repeated until the holders' writes are all in the ledger.
 */
export async function auditThroughLostAnswers(
  ferry: Ferry,
  expected: readonly Expected[],
  ledger: () => readonly LedgerEntry[],
  waitMs = 15_000,
): Promise<{ report: Audit; problems: string[]; lostAnswers: number }> {
  const deadline = Date.now() + waitMs;
  let report = await audit(ferry, expected, ledger());
  while (report.problems.some((p) => NOT_YET.test(p)) && Date.now() < deadline) {
    await sleep(250);
    report = await audit(ferry, expected, ledger());
  }
  const problems: string[] = [];
  let lostAnswers = 0;
  for (const problem of report.problems) {
    const id = problem.split(" ")[0]!;
    const job = report.jobs.get(id);
    const holder = job?.claims.find((c) => c.fence === job.fence);
    if (problem.endsWith(REFUSED) && job !== undefined && holder !== undefined) {
      const record = await ferry.store.getJob(id);
      const stored =
        record?.result == null
          ? undefined
          : (getSerializer(record.serializer).decode(record.result) as { pid?: number; attempt?: number });
      if (stored !== undefined && stored.pid === holder.pid && stored.attempt === holder.attempt) {
        lostAnswers += 1;
        continue;
      }
    }
    problems.push(problem);
  }
  return { report, problems, lostAnswers };
}

/** The PostgresStore behind a Ferry opened on a postgres:// URL. */
export const pgStoreOf = (ferry: Ferry): PostgresStore => ferry.store as unknown as PostgresStore;

export type { JobStatus };
