/**
 * The role `sql.exec` connects as, and why it may be too strong. A superuser, or a member of a role
 * that reaches the database server's programs and files, turns a job's SQL into commands on the
 * database host (`COPY … TO PROGRAM`, `pg_read_file`, `CREATE EXTENSION`). So is a member of a
 * superuser role (it can `SET ROLE` to it), and, before PostgreSQL 16, a role with CREATEROLE (it
 * can grant itself `pg_execute_server_program`).
 */
import pg from "pg";
import { ErrorCode, FerryError } from "../core/errors.js";

export const SERVER_ACCESS_ROLES = [
  "pg_execute_server_program",
  "pg_read_server_files",
  "pg_write_server_files",
] as const;

/**
 * A SQL expression: the reasons the current role is too strong for `sql.exec`, as a text array
 * (empty for a plain role). It reads the catalog only, so it fits in a job's setup query.
 */
export const TOO_STRONG_REASONS_SQL = `ARRAY(
  SELECT reason FROM (
    SELECT 1 AS rank, 'a superuser' AS reason FROM pg_roles
      WHERE rolname = current_user AND rolsuper
    UNION ALL
    SELECT 2, CASE WHEN g.rolsuper THEN 'a member of superuser ' ELSE 'a member of ' END || g.rolname
      FROM pg_roles g, pg_roles me
      WHERE me.rolname = current_user AND NOT me.rolsuper AND g.oid <> me.oid
        AND (g.rolsuper OR g.rolname IN (${SERVER_ACCESS_ROLES.map((r) => `'${r}'`).join(", ")}))
        AND pg_has_role(me.oid, g.oid, 'MEMBER')
    UNION ALL
    SELECT 3, 'allowed CREATEROLE, which can grant itself those roles before PostgreSQL 16' FROM pg_roles
      WHERE rolname = current_user AND rolcreaterole AND NOT rolsuper
        AND current_setting('server_version_num')::int < 160000
  ) AS found ORDER BY rank, reason
)`;

export interface SqlRole {
  /** The role's name. */
  readonly role: string;
  /** Why it is too strong; empty for a plain role. */
  readonly tooStrong: readonly string[];
}

/** The role `url` connects as, and why it is too strong (one short connection). */
export async function inspectSqlRole(url: string, connectTimeoutMs: number): Promise<SqlRole> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: connectTimeoutMs,
    application_name: "ferry sql.exec role check",
  });
  client.on("error", () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ role: string; reasons: string[] }>(
      `SELECT current_user AS role, ${TOO_STRONG_REASONS_SQL} AS reasons`,
    );
    return { role: rows[0]!.role, tooStrong: rows[0]!.reasons };
  } finally {
    await client.end().catch(() => {});
  }
}

/** The refusal of a job on a role that is too strong: nothing of the job's SQL ran. */
export function tooStrongError(role: SqlRole): FerryError {
  return new FerryError(
    ErrorCode.PermissionDenied,
    `sql.exec refuses to run as ${describeRole(role)}: connect as a plain role, or allow it ` +
      "([sql] allow_superuser = true in the daemon, allowSuperuser in sqlExecHandler)",
  );
}

/** "role postgres, a superuser" */
export const describeRole = (role: SqlRole): string => `role ${role.role}, ${role.tooStrong.join(", ")}`;
