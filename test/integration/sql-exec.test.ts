/**
 * sql.exec against the machine's real PostgreSQL (FERRY_TEST_PG_URL overrides). Unreachable
 * PostgreSQL fails these tests: it never skips them. Each test gets a schema of its own, dropped
 * afterwards, and a Ferry on a fresh SQLite file.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isTransientSqlState } from "../../src/handlers/sql-exec.js";
import {
  ErrorCode,
  Ferry,
  type Handle,
  type JobResult,
  type SqlExecResult,
  sqlExecHandler,
} from "../../src/index.js";
import { eventually, tempDir } from "../helpers/temp.js";

// The user is named: pg would otherwise take $USER, which is unset in some CI shells.
const PG_URL = process.env.FERRY_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const MAX_ROWS = 5;

let admin: pg.Client;
let unreachable: Error | undefined;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5_000 });
  admin.on("error", () => {});
  try {
    await admin.connect();
  } catch (error) {
    unreachable = new Error(`PostgreSQL at ${PG_URL} is unreachable: ${String(error)}`, { cause: error });
  }
});

afterAll(async () => {
  if (unreachable === undefined) await admin.end();
});

describe("sql.exec", () => {
  let ferry: Ferry;
  let dir: ReturnType<typeof tempDir>;
  /** This test's schema, e.g. ferry_sqlexec_0a1b2c3d4e5f. */
  let s: string;

  beforeEach(async () => {
    // Every test fails, none is skipped, when PostgreSQL is not there.
    if (unreachable !== undefined) throw unreachable;
    s = `ferry_sqlexec_${randomBytes(6).toString("hex")}`;
    await admin.query(`CREATE SCHEMA ${s}`);
    dir = tempDir("ferry-sqlexec-");
    ferry = await Ferry.open({ store: `sqlite:${join(dir.path, "ferry.db")}` });
    const worker = ferry.worker({
      pollInterval: "50ms",
      handlers: {
        // The test database's role is a superuser; refusing one is test/security/sql-exec-role.test.ts.
        "sql.exec": sqlExecHandler({ url: PG_URL, maxRows: MAX_ROWS, allowSuperuser: true }),
        // Nothing listens on port 1: every connection is refused.
        "sql.down": sqlExecHandler({ url: "postgres://127.0.0.1:1/test", connectTimeout: "2s" }),
      },
    });
    await worker.start();
  });

  afterEach(async () => {
    if (unreachable !== undefined) return;
    await ferry.close({ grace: "10s" });
    dir.remove();
    await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  });

  /** Launches, waits for the end and collects the result. */
  async function exec(
    payload: unknown,
    options: Parameters<Ferry["launch"]>[2] = {},
    handler = "sql.exec",
  ): Promise<JobResult<SqlExecResult>> {
    const h = await ferry.launch(handler, payload, { attempts: 1, ...options });
    await ferry.wait(h, { timeout: "20s" });
    return ferry.result<SqlExecResult>(h);
  }

  const count = async (table: string): Promise<number> =>
    Number((await admin.query(`SELECT count(*) AS n FROM ${s}.${table}`)).rows[0].n);

  /** Backends whose current query text holds `marker` (other than the admin's own). */
  const backendsRunning = async (marker: string): Promise<number> =>
    (
      await admin.query(
        "SELECT pid FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
        [marker],
      )
    ).rowCount ?? 0;

  const waitUntilRunning = async (h: Handle, marker: string) => {
    await eventually(async () => (await ferry.status(h)).state === "running", "the job to start");
    await eventually(async () => (await backendsRunning(marker)) === 1, "the statement to reach PostgreSQL");
  };

  it("returns rows, the command tag and the row count", async () => {
    await admin.query(`CREATE TABLE ${s}.items (id int PRIMARY KEY, name text)`);
    const inserted = await exec({
      sql: `INSERT INTO ${s}.items VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
    });
    expect(inserted).toMatchObject({
      state: "completed",
      value: { command: "INSERT", rowCount: 3, rows: [], truncated: false },
    });
    const selected = await exec({
      sql: `SELECT id, name FROM ${s}.items WHERE id >= $1 ORDER BY id`,
      params: [2],
    });
    expect(selected.value).toEqual({
      command: "SELECT",
      rowCount: 2,
      rows: [
        { id: 2, name: "two" },
        { id: 3, name: "three" },
      ],
      truncated: false,
    });
    const ddl = await exec({ sql: `CREATE TABLE ${s}.other (x int)` });
    expect(ddl.value).toMatchObject({ command: "CREATE", rows: [], truncated: false });
  });

  it("turns PostgreSQL values into plain JSON", async () => {
    const r = await exec({
      sql: `SELECT 9007199254740993::int8 AS big, 1.10::numeric AS num, 2.5::float8 AS f,
                   'NaN'::float8 AS nan, 'infinity'::float8 AS inf, true AS b, NULL::int AS nothing,
                   '2024-02-03 04:05:06.789+00'::timestamptz AS tstz, 'infinity'::timestamptz AS tsinf,
                   '2024-02-03 04:05:06.123456'::timestamp AS ts, '2024-02-03'::date AS d,
                   '1 day 02:00:00'::interval AS iv, '\\x00ff'::bytea AS bin,
                   '{"a":[1,{"b":null}]}'::jsonb AS doc, ARRAY[1,2,3] AS ints,
                   ARRAY['2024-02-03 04:05:06+00'::timestamptz] AS tstzs, ARRAY['2024-02-03'::date] AS ds,
                   ARRAY[1::int8] AS bigs, '00000000-0000-0000-0000-000000000001'::uuid AS id`,
    });
    expect(r.state).toBe("completed");
    expect(r.value?.rows).toEqual([
      {
        big: "9007199254740993",
        num: "1.10",
        f: 2.5,
        nan: "NaN",
        inf: "Infinity",
        b: true,
        nothing: null,
        tstz: "2024-02-03T04:05:06.789Z",
        tsinf: "infinity",
        ts: "2024-02-03 04:05:06.123456",
        d: "2024-02-03",
        iv: "1 day 02:00:00",
        bin: "\\x00ff",
        doc: { a: [1, { b: null }] },
        ints: [1, 2, 3],
        tstzs: ["2024-02-03T04:05:06.000Z"],
        ds: ["2024-02-03"],
        bigs: ["1"],
        id: "00000000-0000-0000-0000-000000000001",
      },
    ]);
  });

  it("binds params as data: an injection attempt stays a string", async () => {
    await admin.query(`CREATE TABLE ${s}.notes (body text)`);
    const evil = `x'); DROP TABLE ${s}.notes; --`;
    const r = await exec({ sql: `INSERT INTO ${s}.notes (body) VALUES ($1) RETURNING body`, params: [evil] });
    expect(r.value).toMatchObject({ command: "INSERT", rowCount: 1, rows: [{ body: evil }] });
    expect((await admin.query(`SELECT body FROM ${s}.notes`)).rows).toEqual([{ body: evil }]);
    const typed = await exec({
      sql: "SELECT $1::int + $2::int AS sum, $3::jsonb AS doc, $4::text IS NULL AS missing",
      params: [2, 3, { k: "v" }, null],
    });
    expect(typed.value?.rows).toEqual([{ sum: 5, doc: { k: "v" }, missing: true }]);
  });

  it("refuses several statements in one payload, with or without params", async () => {
    await admin.query(`CREATE TABLE ${s}.keep (x int)`);
    for (const payload of [
      { sql: `SELECT 1; DROP TABLE ${s}.keep` },
      { sql: `SELECT $1::int; DROP TABLE ${s}.keep`, params: [1] },
    ]) {
      const r = await exec(payload, { attempts: 3 });
      expect(r.state).toBe("failed");
      expect(r.attempts).toBe(1);
      expect(r.error).toMatchObject({
        code: "FERRY_SQL_ERROR",
        retryable: false,
        fields: { sqlstate: "42601" },
      });
      expect(r.error?.message).toContain("multiple commands");
    }
    expect(await count("keep")).toBe(0); // the table is still there
  });

  it("caps the rows it returns and says so", async () => {
    const r = await exec({ sql: "SELECT g AS n FROM generate_series(1, 20) AS g ORDER BY g" });
    expect(r.value).toEqual({
      command: "SELECT",
      rowCount: 20,
      rows: [1, 2, 3, 4, 5].map((n) => ({ n })),
      truncated: true,
    });
    const exact = await exec({ sql: `SELECT g AS n FROM generate_series(1, ${MAX_ROWS}) AS g` });
    expect(exact.value).toMatchObject({ rowCount: MAX_ROWS, truncated: false });
  });

  it("reports a unique violation with its SQLSTATE, constraint and table, and does not retry it", async () => {
    await admin.query(`CREATE TABLE ${s}.users (email text CONSTRAINT users_email_key UNIQUE)`);
    await admin.query(`INSERT INTO ${s}.users VALUES ('a@example.com')`);
    const h = await ferry.launch(
      "sql.exec",
      { sql: `INSERT INTO ${s}.users (email) VALUES ($1)`, params: ["a@example.com"] },
      { attempts: 5, backoff: { type: "fixed", base: "10ms" } },
    );
    await ferry.wait(h, { timeout: "10s" });
    const status = await ferry.status(h);
    expect(status.errorInfo).toMatchObject({ code: "FERRY_SQL_ERROR", retryable: false });
    const r = await ferry.result(h);
    expect(r.state).toBe("failed");
    expect(r.attempts).toBe(1);
    expect(r.error).toMatchObject({
      code: "FERRY_SQL_ERROR",
      retryable: false,
      attempt: 1,
      message: 'duplicate key value violates unique constraint "users_email_key"',
      detail: "Key (email)=(a@example.com) already exists.",
      fields: {
        sqlstate: "23505",
        constraint: "users_email_key",
        table: "users",
        schema: s,
        detail: "Key (email)=(a@example.com) already exists.",
      },
    });
  });

  it("retries transient SQLSTATEs (serialization failure) and connection failures", async () => {
    const fast = { attempts: 2, backoff: { type: "fixed" as const, base: "10ms" } };
    const serialization = await exec(
      { sql: "DO $$ BEGIN RAISE EXCEPTION 'try again' USING ERRCODE = '40001'; END $$" },
      fast,
    );
    expect(serialization).toMatchObject({
      state: "failed",
      attempts: 2,
      error: { code: "FERRY_SQL_ERROR", message: "try again", fields: { sqlstate: "40001" } },
    });
    const down = await exec({ sql: "SELECT 1" }, fast, "sql.down");
    expect(down).toMatchObject({
      state: "failed",
      attempts: 2,
      error: { code: "FERRY_SQL_ERROR", fields: { sqlstate: "08001" } },
    });
    expect(down.error?.message).toMatch(/ECONNREFUSED/);
  });

  it("treats a statement's own mistakes as final, transient SQLSTATEs as retryable", async () => {
    const missing = await exec({ sql: "SELECT $1::int + $2::int", params: [1] }, { attempts: 3 });
    expect(missing).toMatchObject({
      state: "failed",
      attempts: 1,
      error: { code: "FERRY_SQL_ERROR", fields: { sqlstate: "08P01" } },
    });
    for (const code of ["40001", "40P01", "08000", "08001", "08006", "57P01", "53300"])
      expect(isTransientSqlState(code), code).toBe(true);
    for (const code of ["23505", "42601", "42P01", "22012", "57014", "08P01", "08007", "25001"])
      expect(isTransientSqlState(code), code).toBe(false);
  });

  it("refuses a malformed payload without retrying", async () => {
    for (const payload of [
      { sql: "" },
      { sql: "  " },
      { sql: "SELECT 1", extra: true },
      { params: [] },
      "SELECT 1",
    ]) {
      const r = await exec(payload, { attempts: 3 });
      expect(r).toMatchObject({ state: "failed", attempts: 1, error: { code: ErrorCode.InvalidArgument } });
    }
  });

  it("sets statement_timeout to the job's timeout, and the timeout ends a long statement", async () => {
    const shown = await exec({ sql: "SELECT current_setting('statement_timeout') AS t" }, { timeout: "7s" });
    expect(shown.value?.rows).toEqual([{ t: "7s" }]);
    // No job timeout: the handler's statementTimeout (5 min by default).
    const fallback = await exec({ sql: "SHOW statement_timeout" });
    expect(fallback.value?.rows).toEqual([{ statement_timeout: "5min" }]);

    const marker = `timeout_${randomBytes(4).toString("hex")}`;
    const started = Date.now();
    const r = await exec({ sql: `SELECT pg_sleep(30) /* ${marker} */` }, { timeout: "1s" });
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(r.state).toBe("failed");
    expect(r.error).toMatchObject({ code: ErrorCode.Timeout });
    await eventually(async () => (await backendsRunning(marker)) === 0, "the statement to stop", 3_000);
  });

  it("cancel stops the running statement within a couple of seconds and rolls it back", async () => {
    await admin.query(`CREATE TABLE ${s}.log (x int)`);
    const marker = `cancel_${randomBytes(4).toString("hex")}`;
    const h = await ferry.launch("sql.exec", {
      sql: `WITH w AS (INSERT INTO ${s}.log VALUES (1) RETURNING x) SELECT pg_sleep(30) /* ${marker} */ FROM w`,
    });
    await waitUntilRunning(h, marker);
    const started = Date.now();
    await ferry.cancel(h, { grace: "10s" });
    const status = await ferry.wait(h, { timeout: "5s" });
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(status.state).toBe("cancelled");
    // Ended by the handler (it stopped), not forced after the grace period.
    expect(status.errorInfo).toMatchObject({ code: ErrorCode.Cancelled, message: "cancelled by request" });
    expect(await backendsRunning(marker)).toBe(0);
    expect(await count("log")).toBe(0);
  });

  it("commits a job's writes on its own, and rolls back a failed job's writes", async () => {
    await admin.query(`CREATE TABLE ${s}.events (id int PRIMARY KEY)`);
    const ok = await exec({ sql: `INSERT INTO ${s}.events VALUES ($1)`, params: [1] });
    expect(ok.state).toBe("completed");
    // Seen from another connection: the job's own transaction committed.
    expect(await count("events")).toBe(1);

    // One statement that writes a row and then fails: nothing of it stays.
    const failed = await exec({ sql: `INSERT INTO ${s}.events VALUES (2), (1)` });
    expect(failed.error?.fields).toMatchObject({ sqlstate: "23505" });
    const divided = await exec({
      sql: `WITH w AS (INSERT INTO ${s}.events VALUES (3) RETURNING id) SELECT id / 0 FROM w`,
    });
    expect(divided.error?.fields).toMatchObject({ sqlstate: "22012" });
    expect((await admin.query(`SELECT id FROM ${s}.events ORDER BY id`)).rows).toEqual([{ id: 1 }]);
  });

  it("leaves no connection behind", async () => {
    await exec({ sql: "SELECT 1" });
    await exec({ sql: "SELECT 1/0" });
    const left = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'ferry sql.exec%'",
    );
    expect(left.rows[0].n).toBe(0);
  });
});
