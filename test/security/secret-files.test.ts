/**
 * Secrets can come from files (`[store] url_file`, `[sql] url_file`), so none needs to sit in the
 * daemon's environment, where any process of its user reads it from /proc/PID/environ. The file's
 * text is used without its trailing newline; a key and its `_file` twin exclude each other;
 * `--print-config` shows the file's path, never the secret.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, printConfig } from "../../src/daemon/config.js";
import { freshPgSchema, PG_URL } from "../conformance/stores.js";
import { ferryCli, startTestDaemon, type TestDaemon } from "../helpers/daemon-process.js";
import { tempDir } from "../helpers/temp.js";

const PASSWORD = "canary-pw-93b1";

describe("secrets read from files", () => {
  const dir = tempDir("ferry-secrets-");
  afterAll(dir.remove);
  const file = (name: string, text: string) => {
    const path = join(dir.path, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };

  it("reads store.url and sql.url from their files, without the trailing newline", () => {
    const storeFile = file("store-url", `postgres://ferry:${PASSWORD}@db.example/jobs\n`);
    const sqlFile = file("sql-url", `postgres://report:${PASSWORD}@db.example/reports\r\n`);
    const toml = file("ferry.toml", `[store]\nurl_file = "${storeFile}"\n`);
    const config = loadConfig({ file: toml, env: { FERRY_SQL__URL_FILE: sqlFile } });
    expect(config.store.url).toBe(`postgres://ferry:${PASSWORD}@db.example/jobs`);
    expect(config.sql.url).toBe(`postgres://report:${PASSWORD}@db.example/reports`);
    const printed = printConfig(config);
    expect(printed).not.toContain(PASSWORD);
    expect(printed).toContain(`url_file = "${storeFile}"`);
    expect(printed).toContain(`url_file = "${sqlFile}"`);
    expect(printed).not.toMatch(/^url = "postgres/m);
  });

  it("refuses a key and its _file twin set together, naming where each came from", () => {
    const storeFile = file("store-url-2", "sqlite:./x.db\n");
    const toml = file("both.toml", `[store]\nurl_file = "${storeFile}"\n`);
    expect(() => loadConfig({ file: toml, env: { FERRY_STORE: "sqlite:./y.db" } })).toThrow(
      expect.objectContaining({
        code: "FERRY_INVALID_ARGUMENT",
        message: `store.url (from FERRY_STORE) and store.url_file (from ${toml}) are both set: set one`,
      }),
    );
    expect(() =>
      loadConfig({ env: { FERRY_SQL__URL: "postgres://a@b/c", FERRY_SQL__URL_FILE: storeFile } }),
    ).toThrow(/sql\.url \(from FERRY_SQL__URL\) and sql\.url_file \(from FERRY_SQL__URL_FILE\) are both set/);
  });

  it("refuses a file it cannot read, or an empty one", () => {
    expect(() => loadConfig({ env: { FERRY_STORE__URL_FILE: join(dir.path, "missing") } })).toThrow(
      expect.objectContaining({
        code: "FERRY_INVALID_ARGUMENT",
        message: `store.url_file: cannot read ${join(dir.path, "missing")} (ENOENT)`,
      }),
    );
    const empty = file("empty", "\n");
    expect(() => loadConfig({ env: { FERRY_SQL__URL_FILE: empty } })).toThrow(
      `sql.url_file: ${empty} is empty`,
    );
  });
});

describe("a daemon whose store password is in a file", () => {
  const pgSchema = freshPgSchema();
  const dir = tempDir("ferry-secret-daemon-");
  let daemon: TestDaemon;
  let urlFile: string;
  beforeAll(async () => {
    const url = new URL(pgSchema.url);
    url.password = PASSWORD;
    urlFile = join(dir.path, "store-url");
    writeFileSync(urlFile, `${url.href}\n`, { mode: 0o600 });
    daemon = await startTestDaemon({ env: { FERRY_STORE__URL_FILE: urlFile } });
  }, 30_000);
  afterAll(async () => {
    daemon?.stop();
    dir.remove();
    await pgSchema.drop();
  });

  it("runs on that store with the password nowhere in its environment or printed config", async () => {
    const call = async (method: string, body: unknown) => {
      const answer = await fetch(`${daemon.url}/ferry.v1.JobService/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${daemon.adminToken()}` },
        body: JSON.stringify(body),
      });
      expect(answer.status).toBe(200);
      return (await answer.json()) as Record<string, unknown>;
    };
    const { handle } = await call("Launch", { handler: "ferry.echo", payload: { ok: 1 } });
    expect(await call("Wait", { handle, timeout: "20s" })).toMatchObject({ state: "completed" });
    // The job is in the PostgreSQL schema the file named.
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM ${pgSchema.schema}.jobs`);
      expect(rows[0]).toEqual({ n: 1 });
    } finally {
      await client.end();
    }
    expect(readFileSync(`/proc/${daemon.child.pid}/environ`, "latin1")).not.toContain(PASSWORD);
    expect(daemon.log()).not.toContain(PASSWORD);
    const printed = await ferryCli(["daemon", "--print-config"], { FERRY_STORE__URL_FILE: urlFile });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain(`url_file = "${urlFile}"`);
    expect(printed.stdout).not.toContain(PASSWORD);
  });
});
