/**
 * `[sql] url`'s role, checked when `ferry daemon` or `ferry worker` starts: a role that is too
 * strong (a superuser…, see src/handlers/sql-role.ts) stops the start with an error naming
 * `[sql] allow_superuser`, or, when that key allows it, is logged as a warning. A database that
 * cannot be reached now is only logged: each sql.exec job checks its own session's role before
 * it runs anything, so the check holds whatever the database was doing at start.
 */
import { invalidArgument } from "../core/errors.js";
import { describeRole, inspectSqlRole, type SqlRole } from "../handlers/sql-role.js";
import type { DaemonConfig } from "./config-schema.js";
import type { Logger } from "./log.js";

/** How long the start waits for the database before leaving the check to the jobs. */
const START_CHECK_TIMEOUT_MS = 5_000;

export async function checkSqlRoleAtStart(sql: DaemonConfig["sql"], log: Logger): Promise<void> {
  let role: SqlRole;
  try {
    role = await inspectSqlRole(sql.url, START_CHECK_TIMEOUT_MS);
  } catch (error) {
    log.warn(
      { error: error instanceof Error ? error.message : String(error) },
      "could not check the role [sql] url connects as: each sql.exec job checks it before running",
    );
    return;
  }
  if (role.tooStrong.length === 0) return;
  if (!sql.allow_superuser) {
    throw invalidArgument(
      `sql.url connects as ${describeRole(role)}: sql.exec refuses such a role, whose SQL can run ` +
        "programs and read files on the database server. Connect as a plain role, or set " +
        "[sql] allow_superuser = true",
    );
  }
  log.warn(
    { role: role.role, tooStrong: role.tooStrong },
    `sql.exec runs as ${describeRole(role)} ([sql] allow_superuser = true): its jobs can run ` +
      "programs and read files on the database server",
  );
}
