/**
 * A viewer sees every job's error code, never its error text or a payload preview: secrets from
 * payloads end up in both (here a PostgreSQL error quoting a bound parameter, and a unique
 * violation's detail). Checked on the bytes of every JobService and AdminService answer a viewer
 * gets, on the CLI, and on the converters themselves for the answers viewers are refused today.
 */
import { randomBytes } from "node:crypto";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ErrorInfo, JobResult, JobStatus } from "../../src/core/job.js";
import { resultOut, statusOut } from "../../src/daemon/rpc-convert.js";
import { PG_URL } from "../conformance/stores.js";
import { ferryCli } from "../helpers/daemon-process.js";
import { type DaemonUser, type DaemonWithUsers, startDaemonWithUsers } from "./daemon-with-users.js";

const json = (value: JsonValue) => fromJson(ValueSchema, value);
const SECRET = `SECRET-${randomBytes(6).toString("hex")}`;
const schema = `ferry_viewer_${randomBytes(4).toString("hex")}`;

describe("a viewer sees error codes, never error text or payloads", () => {
  let d: DaemonWithUsers;
  let sam: DaemonUser;
  let vic: DaemonUser;
  const db = new pg.Client({ connectionString: PG_URL });

  /** A sql.exec job of sam's, run to its end. */
  async function run(sql: string, params: JsonValue[]) {
    const { handle } = await d.jobs.launch(
      { handler: "sql.exec", payload: json({ sql, params }), options: { attempts: 1 } },
      sam.as,
    );
    return { handle, status: await d.jobs.wait({ handle, timeout: "20s" }, sam.as) };
  }

  /** A raw Connect JSON call: the answer's status and every byte of its body. */
  async function raw(user: DaemonUser, path: string, body: unknown = {}) {
    const response = await fetch(`${d.daemon.url}/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
      body: JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  }

  let castFailure: Awaited<ReturnType<typeof run>>;
  let duplicate: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    await db.connect();
    await db.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.keys (k text PRIMARY KEY)`);
    // The test database's role is a superuser: allowed here, refused in sql-exec-role.test.ts.
    d = await startDaemonWithUsers({ FERRY_SQL__URL: PG_URL, FERRY_SQL__ALLOW_SUPERUSER: "true" });
    sam = await d.user("sam", { grants: ["sql.exec"] });
    vic = await d.user("vic", { role: "viewer" });
    // PostgreSQL quotes the bad value in the message; a duplicate key's value goes in its detail.
    castFailure = await run("SELECT $1::int AS n", [SECRET]);
    await run(`INSERT INTO ${schema}.keys (k) VALUES ($1)`, [SECRET]);
    duplicate = await run(`INSERT INTO ${schema}.keys (k) VALUES ($1)`, [SECRET]);
  }, 90_000);

  afterAll(async () => {
    d?.daemon.stop();
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  });

  it("has jobs whose errors hold the secret, as their owner and an admin see them", async () => {
    expect(castFailure.status.state).toBe("failed");
    expect(castFailure.status.errorInfo?.message).toContain(SECRET);
    expect(duplicate.status.errorInfo?.fields.detail).toContain(SECRET);
    const rows = (await d.jobs.list({ handler: "sql.exec", state: "failed" }, d.root)).jobs;
    expect(rows.some((row) => row.lastError?.includes(SECRET))).toBe(true);
    expect(rows.every((row) => row.lastErrorCode === "FERRY_SQL_ERROR")).toBe(true);
  });

  it("lists every failed job to a viewer with its code and nothing of its text or payload", async () => {
    const rows = (await d.jobs.list({ handler: "sql.exec" }, vic.as)).jobs;
    const failed = rows.filter((row) => row.state === "failed");
    expect(failed.map((row) => row.id).sort()).toEqual([castFailure.status.id, duplicate.status.id].sort());
    for (const row of failed) {
      expect(row).toMatchObject({ lastErrorCode: "FERRY_SQL_ERROR" });
      expect(row.lastError).toBeUndefined();
      expect(row.preview).toBeUndefined();
    }
    const listed = await raw(vic, "ferry.v1.JobService/List", { handler: "sql.exec" });
    expect(listed.status).toBe(200);
    expect(listed.text).toContain("FERRY_SQL_ERROR");
    expect(listed.text).not.toContain(SECRET);
  });

  it("answers a viewer's calls on one job, and the store's figures, without the secret", async () => {
    const handle = castFailure.handle!;
    for (const method of ["Status", "Result", "Outcome", "Wait", "Watch"]) {
      const answer = await raw(vic, `ferry.v1.JobService/${method}`, { handle });
      expect(answer.text, method).not.toContain(SECRET);
      expect(answer.status, method).not.toBe(200);
    }
    const stats = await raw(vic, "ferry.v1.AdminService/Stats");
    expect(stats.status).toBe(200);
    expect(stats.text).not.toContain(SECRET);
  });

  it("shows a viewer the code in `ferry list`, never the text", async () => {
    const env = { FERRY_SERVER: d.daemon.url, FERRY_TOKEN: vic.token };
    const table = await ferryCli(["list", "--handler", "sql.exec"], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain("FERRY_SQL_ERROR");
    expect(table.stdout).not.toContain(SECRET);
    const lines = await ferryCli(["list", "--handler", "sql.exec", "--json"], env);
    expect(lines.stdout).toContain('"lastErrorCode":"FERRY_SQL_ERROR"');
    expect(lines.stdout).not.toContain(SECRET);
  });
});

describe("the job converters, at the viewer's detail", () => {
  const error: ErrorInfo = {
    code: "FERRY_SQL_ERROR",
    message: `invalid input syntax for type integer: "${SECRET}"`,
    retryable: false,
    attempt: 1,
    fields: { sqlstate: "22P02", detail: SECRET },
  };

  it("keep an error's code and drop its message and fields in statuses and results", () => {
    const at = new Date();
    const status: JobStatus = {
      id: "j1",
      handler: "sql.exec",
      queue: "default",
      state: "failed",
      attempts: 1,
      maxAttempts: 1,
      progress: null,
      label: null,
      priority: 0,
      launchedAt: at,
      runAt: at,
      startedAt: at,
      finishedAt: at,
      consumed: false,
      cancelRequested: false,
      errorInfo: error,
      owner: "sam",
    };
    const result: JobResult = {
      id: "j1",
      state: "failed",
      error,
      attempts: 1,
      startedAt: at,
      finishedAt: at,
    };
    for (const shown of [statusOut(status, "codes").errorInfo, resultOut(result, "codes").error]) {
      expect(shown).toMatchObject({ code: "FERRY_SQL_ERROR", message: "", fields: {} });
      expect(JSON.stringify(shown)).not.toContain(SECRET);
    }
    expect(statusOut(status, "full").errorInfo?.message).toContain(SECRET);
  });
});
