/**
 * `sql.exec` refuses a role that reaches the database server's programs and files: a superuser, a
 * member of pg_execute_server_program, pg_read_server_files, pg_write_server_files or of a
 * superuser role, or (before PostgreSQL 16) a role with CREATEROLE. The daemon refuses to start
 * on one, naming `[sql] allow_superuser`; with that key it starts and warns. Every job checks its
 * own session's role too, so a role made a superuser after the start runs nothing either.
 * Roles are made here (the local PostgreSQL trusts every role) and dropped at the end.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { inspectSqlRole } from "../../src/handlers/sql-role.js";
import { Ferry, sqlExecHandler } from "../../src/index.js";
import { PG_URL } from "../conformance/stores.js";
import { type Exited, finished, runFerry } from "../helpers/daemon-process.js";
import { tempDir } from "../helpers/temp.js";
import { startDaemonWithUsers } from "./daemon-with-users.js";

const tag = randomBytes(4).toString("hex");
const role = (name: string) => `ferry_${name}_${tag}`;
const ROLES = {
  plain: role("plain"),
  program: role("program"),
  readFiles: role("readfiles"),
  writeFiles: role("writefiles"),
  superRole: role("superrole"),
  superMember: role("supermember"),
  createRole: role("createrole"),
  promoted: role("promoted"),
};
const schema = `ferry_sqlrole_${tag}`;

/** PG_URL, connecting as `name`. */
function urlAs(name: string): string {
  const url = new URL(PG_URL);
  url.username = name;
  url.password = "";
  return url.toString();
}

const json = (value: JsonValue) => fromJson(ValueSchema, value);

/** `ferry daemon` with `env`, expected to stop before it listens; killed after 60 s if not. */
async function refusedStart(env: NodeJS.ProcessEnv): Promise<Exited> {
  const dir = tempDir("ferry-sqlrole-");
  try {
    const child = runFerry(["daemon", "--port", "0", "--no-plugins"], env, dir.path);
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const exited = await finished(child);
    clearTimeout(timer);
    return exited;
  } finally {
    dir.remove();
  }
}

describe("the role sql.exec connects as", () => {
  const db = new pg.Client({ connectionString: PG_URL });
  const stops: (() => void)[] = [];

  beforeAll(async () => {
    await db.connect();
    await db.query(`
      CREATE SCHEMA ${schema};
      CREATE ROLE ${ROLES.plain} LOGIN;
      CREATE ROLE ${ROLES.program} LOGIN IN ROLE pg_execute_server_program;
      CREATE ROLE ${ROLES.readFiles} LOGIN IN ROLE pg_read_server_files;
      CREATE ROLE ${ROLES.writeFiles} LOGIN IN ROLE pg_write_server_files;
      CREATE ROLE ${ROLES.superRole} NOLOGIN SUPERUSER;
      CREATE ROLE ${ROLES.superMember} LOGIN IN ROLE ${ROLES.superRole};
      CREATE ROLE ${ROLES.createRole} LOGIN CREATEROLE;
      CREATE ROLE ${ROLES.promoted} LOGIN;
    `);
  }, 30_000);

  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  afterAll(async () => {
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    for (const name of Object.values(ROLES)) await db.query(`DROP ROLE IF EXISTS ${name}`);
    await db.end();
  });

  it("is judged by why it is too strong, and a plain role is not", async () => {
    const version = Number(
      (await db.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v,
    );
    const cases: [string, string[]][] = [
      [ROLES.plain, []],
      [ROLES.program, ["a member of pg_execute_server_program"]],
      [ROLES.readFiles, ["a member of pg_read_server_files"]],
      [ROLES.writeFiles, ["a member of pg_write_server_files"]],
      [ROLES.superMember, [`a member of superuser ${ROLES.superRole}`]],
      [
        ROLES.createRole,
        version < 160_000
          ? ["allowed CREATEROLE, which can grant itself those roles before PostgreSQL 16"]
          : [],
      ],
    ];
    for (const [name, reasons] of cases) {
      expect(await inspectSqlRole(urlAs(name), 10_000), name).toEqual({ role: name, tooStrong: reasons });
    }
    const superuser = await inspectSqlRole(PG_URL, 10_000);
    expect(superuser.tooStrong).toEqual(["a superuser"]);
  });

  it("stops the daemon's start on a superuser or a server-file role, naming allow_superuser", async () => {
    for (const [url, why] of [
      [PG_URL, "a superuser"],
      [urlAs(ROLES.program), "a member of pg_execute_server_program"],
    ] as const) {
      const exited = await refusedStart({ FERRY_SQL__URL: url });
      expect(exited.code, exited.stderr).toBe(2);
      expect(exited.stderr).toContain("FERRY_INVALID_ARGUMENT");
      expect(exited.stderr).toContain(why);
      expect(exited.stderr).toContain("[sql] allow_superuser = true");
      expect(exited.stdout).not.toContain("listening on");
    }
  }, 120_000);

  it("starts on a plain role, whose jobs cannot reach the server's programs", async () => {
    const d = await startDaemonWithUsers({ FERRY_SQL__URL: urlAs(ROLES.plain) });
    stops.push(d.daemon.stop);
    const run = async (sql: string) => {
      const { handle } = await d.jobs.launch(
        { handler: "sql.exec", payload: json({ sql }), options: { attempts: 1 } },
        d.root,
      );
      await d.jobs.wait({ handle, timeout: "20s" }, d.root);
      return d.jobs.result({ handle }, d.root);
    };
    const who = await run("SELECT current_user AS who");
    expect(who.state).toBe("completed");
    expect(JSON.stringify(who.value)).toContain(ROLES.plain);
    const program = await run("COPY (SELECT 1) TO PROGRAM 'true'");
    expect(program).toMatchObject({ state: "failed", error: { fields: { sqlstate: "42501" } } });
    expect(d.daemon.log()).not.toContain("allow_superuser");

    // Made a superuser after the start: its next job is refused before any of its SQL runs.
    await db.query(`ALTER ROLE ${ROLES.plain} SUPERUSER`);
    try {
      const refused = await run(`CREATE TABLE ${schema}.made_by_a_job (x int)`);
      expect(refused).toMatchObject({ state: "failed", error: { code: "FERRY_PERMISSION_DENIED" } });
      expect(refused.error?.message).toContain("allow_superuser");
      const made = await db.query("SELECT to_regclass($1) AS t", [`${schema}.made_by_a_job`]);
      expect(made.rows[0].t).toBeNull();
    } finally {
      await db.query(`ALTER ROLE ${ROLES.plain} NOSUPERUSER`);
    }
  }, 60_000);

  it("starts on a superuser with [sql] allow_superuser = true, and warns", async () => {
    const d = await startDaemonWithUsers({ FERRY_SQL__URL: PG_URL, FERRY_SQL__ALLOW_SUPERUSER: "true" });
    stops.push(d.daemon.stop);
    const warning = d.daemon
      .log()
      .split("\n")
      .find((line) => line.includes("allow_superuser"));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning!)).toMatchObject({ level: 40, tooStrong: ["a superuser"] });
    const { handle } = await d.jobs.launch(
      { handler: "sql.exec", payload: json({ sql: "SELECT 1 AS one" }) },
      d.root,
    );
    expect((await d.jobs.wait({ handle, timeout: "20s" }, d.root)).state).toBe("completed");
  }, 60_000);

  it("refuses a library sql.exec job on a superuser unless allowSuperuser, running none of its SQL", async () => {
    const dir = tempDir("ferry-sqlrole-lib-");
    const ferry = await Ferry.open({ store: `sqlite:${join(dir.path, "ferry.db")}` });
    const worker = ferry.worker({
      pollInterval: "50ms",
      handlers: {
        "sql.exec": sqlExecHandler({ url: PG_URL }),
        "sql.allowed": sqlExecHandler({ url: PG_URL, allowSuperuser: true }),
      },
    });
    await worker.start();
    try {
      const table = `${schema}.made_by_the_library`;
      const refused = await ferry.run("sql.exec", { sql: `CREATE TABLE ${table} (x int)` });
      expect(refused).toMatchObject({ state: "failed", error: { code: "FERRY_PERMISSION_DENIED" } });
      expect((await db.query("SELECT to_regclass($1) AS t", [table])).rows[0].t).toBeNull();
      await ferry.run("sql.allowed", { sql: `CREATE TABLE ${table} (x int)` });
      expect((await db.query("SELECT to_regclass($1) AS t", [table])).rows[0].t).not.toBeNull();
    } finally {
      await worker.stop();
      await ferry.close();
      dir.remove();
    }
  }, 60_000);
});
