import pg from "pg";
import { z } from "zod";
import { DEFAULT_TIMEOUT } from "../core/defaults.js";
import { type Duration, parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import { jsonSerializer } from "../serializers/json.js";
import type { Handler, JobContext } from "../worker/handler.js";
import { TOO_STRONG_REASONS_SQL, tooStrongError } from "./sql-role.js";

/**
 * sql.exec: one SQL statement, with bound parameters, in its own transaction on its own
 * connection, with `statement_timeout` = the job's timeout; cancel and timeout cancel the
 * statement (pg_cancel_backend) and roll back. Not registered by default: it needs a database URL,
 * and, once the daemon exists, a per-role grant. It refuses to run as a role that reaches the
 * server's programs or files (a superuser…) unless allowed. See docs/api.md#sqlexec.
 */

/** The job-only code of an error PostgreSQL (or the connection to it) raised; SQLSTATE is in `fields`. */
export const SQL_ERROR_CODE = "FERRY_SQL_ERROR";

export interface SqlExecOptions {
  /** `postgres://…` URL of the database the statements run in. */
  readonly url: string;
  /** Rows returned at most, 0 to 100,000 (default 1000). Later rows are read and dropped; `truncated` says so. */
  readonly maxRows?: number;
  /**
   * Encoded size of the returned rows at most (default 1,000,000 bytes, under the worker's default
   * 1 MiB `maxResultBytes`). Rows past it are dropped like rows past `maxRows`.
   */
  readonly maxResultBytes?: number;
  /** `statement_timeout` of jobs that set no `timeout` of their own (default "5m", the worker's default). */
  readonly statementTimeout?: Duration;
  /** How long to wait for a connection (default "10s"). */
  readonly connectTimeout?: Duration;
  /** Prefix of `application_name` in pg_stat_activity; the job id follows (default "ferry sql.exec"). */
  readonly applicationName?: string;
  /**
   * Run as a superuser, or a role that reaches the server's programs and files (see sql-role.ts).
   * Default false: each job checks its role first and fails with FERRY_PERMISSION_DENIED on one.
   */
  readonly allowSuperuser?: boolean;
}

export interface SqlExecPayload {
  readonly sql: string;
  readonly params?: readonly unknown[];
}

export interface SqlExecResult {
  /** The command tag's verb: "SELECT", "INSERT", "UPDATE", "CREATE", … */
  readonly command: string;
  /** Rows the statement returned or touched, as PostgreSQL counted them (not capped). */
  readonly rowCount: number;
  /** At most `maxRows` rows, as objects keyed by column name. */
  readonly rows: unknown[];
  /** True when rows were dropped by `maxRows` or `maxResultBytes`. */
  readonly truncated: boolean;
}

export const SQL_MAX_CHARS = 100_000;
export const SQL_MAX_PARAMS = 1000;

const payloadSchema = z.strictObject({
  sql: z
    .string()
    .max(SQL_MAX_CHARS)
    .refine((sql) => sql.trim().length > 0, "sql must be a non-empty statement")
    .refine((sql) => !sql.includes("\0"), "sql must not contain NUL characters"),
  params: z.array(z.json()).max(SQL_MAX_PARAMS).optional(),
});

/** A PostgreSQL error as a job sees it: `code` FERRY_SQL_ERROR (or FERRY_TIMEOUT), SQLSTATE in fields. */
export class SqlExecError extends Error {
  override readonly name = "SqlExecError";
  readonly code: string;
  readonly retryable: boolean;
  readonly detail: string | undefined;
  readonly fields: Readonly<Record<string, string>>;

  constructor(
    message: string,
    init: {
      code?: string;
      retryable: boolean;
      detail?: string;
      fields: Record<string, string>;
      cause?: unknown;
    },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code ?? SQL_ERROR_CODE;
    this.retryable = init.retryable;
    this.detail = init.detail;
    this.fields = init.fields;
  }
}

/**
 * SQLSTATEs after which the same statement may well succeed: serialization failure, deadlock,
 * too many connections, the server shutting down, crashing or starting up, and the connection
 * exception class (08…) except 08P01 (protocol violation: e.g. a $2 with one param, a mistake
 * that repeats) and 08007 (transaction resolution unknown: it may have committed).
 */
const TRANSIENT = new Set(["40001", "40P01", "53300", "57P01", "57P02", "57P03"]);
const NOT_TRANSIENT_08 = new Set(["08P01", "08007"]);

export function isTransientSqlState(sqlstate: string): boolean {
  if (sqlstate.startsWith("08")) return !NOT_TRANSIENT_08.has(sqlstate);
  return TRANSIENT.has(sqlstate);
}

const DATABASE_FIELDS = ["detail", "hint", "constraint", "table", "column", "schema"] as const;

/** Where the job was when something failed: decides what a lost connection means. */
type Phase = "connect" | "run" | "commit";

function toSqlError(error: unknown, phase: Phase): unknown {
  if (error instanceof SqlExecError || error instanceof FerryError) return error;
  if (error instanceof pg.DatabaseError && typeof error.code === "string") {
    const fields: Record<string, string> = { sqlstate: error.code };
    for (const key of DATABASE_FIELDS) {
      const value = error[key];
      if (typeof value === "string" && value.length > 0) fields[key] = value;
    }
    // statement_timeout fired before the worker's own timer (which starts earlier, so rarely).
    const timedOut = error.code === "57014" && /statement timeout/.test(error.message);
    return new SqlExecError(error.message, {
      ...(timedOut ? { code: ErrorCode.Timeout } : {}),
      retryable: timedOut || isTransientSqlState(error.code),
      ...(error.detail === undefined ? {} : { detail: error.detail }),
      fields,
      cause: error,
    });
  }
  if (error instanceof Error) {
    // No SQLSTATE: the connection failed (refused, reset, closed, timed out). Named as PgJDBC
    // does: 08001 could not connect, 08006 lost, 08007 lost during COMMIT (outcome unknown, so
    // not retried: the transaction may have committed).
    const sqlstate = phase === "connect" ? "08001" : phase === "commit" ? "08007" : "08006";
    return new SqlExecError(connectionMessage(error), {
      retryable: isTransientSqlState(sqlstate),
      fields: { sqlstate },
      cause: error,
    });
  }
  return error;
}

/** Node's AggregateError (every address refused) has an empty message; its parts do not. */
function connectionMessage(error: Error): string {
  if (error.message.length > 0) return error.message;
  const first = error instanceof AggregateError ? error.errors[0] : undefined;
  if (first instanceof Error && first.message.length > 0) return first.message;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? `connection failed (${code})` : "connection failed";
}

/**
 * Values as the result carries them, all plain JSON: int8 and numeric stay strings (exact);
 * timestamptz is an ISO 8601 UTC string (milliseconds); date, timestamp, time, interval, bytea
 * (hex, `\x…`) and other types without a JS twin are PostgreSQL's own text; json/jsonb are parsed;
 * NaN and ±Infinity floats become "NaN", "Infinity", "-Infinity".
 */
/** pg-types' TypeId enum only names scalar types; array oids are plain numbers to it. */
const parserFor = (oid: number): ((text: string) => unknown) =>
  pg.types.getTypeParser(oid as Parameters<typeof pg.types.getTypeParser>[0], "text");
const TEXT_ARRAY = 1009;
const KEEP_TEXT = new Set([17, 1082, 1114, 1186]); // bytea, date, timestamp, interval
const KEEP_TEXT_ARRAYS = new Set([1001, 1182, 1115, 1187]);
const TIMESTAMPTZ = 1184;
const TIMESTAMPTZ_ARRAY = 1185;

const identity = (text: string): string => text;

function timestamptz(text: string): string {
  if (text === "infinity" || text === "-infinity") return text;
  const parsed: unknown = parserFor(TIMESTAMPTZ)(text);
  return parsed instanceof Date && !Number.isNaN(parsed.getTime()) ? parsed.toISOString() : text;
}

const resultTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    // Ferry's queries never ask for binary results; kept for completeness.
    if (format === "binary") return pg.types.getTypeParser(oid, "binary");
    if (KEEP_TEXT.has(oid)) return identity;
    if (KEEP_TEXT_ARRAYS.has(oid)) return parserFor(TEXT_ARRAY);
    if (oid === TIMESTAMPTZ) return timestamptz;
    if (oid === TIMESTAMPTZ_ARRAY) {
      const parseArray = parserFor(TEXT_ARRAY);
      return (text: string) => toJsonValue(parseArray(text), timestamptz);
    }
    return parserFor(oid);
  }) as typeof pg.types.getTypeParser,
};

/** What a parser may still hand out that plain JSON has no room for. */
function toJsonValue(value: unknown, onString?: (text: string) => string): unknown {
  if (typeof value === "string") return onString === undefined ? value : onString(value);
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString("hex")}`;
  if (Array.isArray(value)) return value.map((item) => toJsonValue(item, onString));
  return value;
}

function toJsonRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(row)) out[key] = toJsonValue(row[key]);
  return out;
}

interface Settings {
  readonly url: string;
  readonly maxRows: number;
  readonly maxResultBytes: number;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly applicationName: string;
  readonly allowSuperuser: boolean;
}

/** PostgreSQL's statement_timeout is an int of milliseconds. */
const PG_MAX_TIMEOUT_MS = 2_147_483_647;
/** How long after an abort we wait for the cancelled statement and the rollback before dropping the connection. */
const ABORT_SETTLE_MS = 5_000;

/**
 * Makes the `sql.exec` handler. Register it under that name:
 * `ferry.worker({ handlers: { "sql.exec": sqlExecHandler({ url }) } })`.
 */
export function sqlExecHandler(options: SqlExecOptions): Handler<SqlExecPayload, SqlExecResult> {
  if (typeof options?.url !== "string" || !/^postgres(ql)?:\/\//.test(options.url)) {
    throw invalidArgument("sql.exec needs a postgres:// url");
  }
  const maxRows = options.maxRows ?? 1000;
  if (!Number.isInteger(maxRows) || maxRows < 0 || maxRows > 100_000) {
    throw invalidArgument("sql.exec maxRows must be an integer from 0 to 100000");
  }
  const maxResultBytes = options.maxResultBytes ?? 1_000_000;
  if (!Number.isInteger(maxResultBytes) || maxResultBytes < 1) {
    throw invalidArgument("sql.exec maxResultBytes must be a positive integer");
  }
  const settings: Settings = {
    url: options.url,
    maxRows,
    maxResultBytes,
    statementTimeoutMs: parseDuration(options.statementTimeout ?? DEFAULT_TIMEOUT, "statementTimeout"),
    connectTimeoutMs: parseDuration(options.connectTimeout ?? "10s", "connectTimeout"),
    applicationName: options.applicationName ?? "ferry sql.exec",
    allowSuperuser: options.allowSuperuser ?? false,
  };
  return (payload, ctx) => {
    const checked = parsePayload(payload);
    return new SqlJob(settings, ctx).run(checked);
  };
}

function parsePayload(payload: unknown): { sql: string; params: unknown[] } {
  const parsed = payloadSchema.safeParse(payload);
  if (!parsed.success) {
    // Paths and zod's messages only: never the payload's values, which may be secrets.
    const problems = parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "payload"}: ${issue.message}`);
    throw invalidArgument(`sql.exec takes { sql, params? }: ${problems.join("; ")}`);
  }
  return { sql: parsed.data.sql, params: parsed.data.params ?? [] };
}

/**
 * One job's run: its own `pg.Client` (nothing a statement leaves in the session, such as SET,
 * temp tables or advisory locks, reaches another job), its own transaction, and a second
 * short-lived connection only to cancel.
 */
class SqlJob {
  readonly #settings: Settings;
  readonly #signal: AbortSignal;
  /** statement_timeout in ms: the job's timeout, else the handler's `statementTimeout`. */
  readonly #timeoutMs: number;
  readonly #client: pg.Client;
  /** The backend running our statement, once known. */
  #pid: number | undefined;
  /** A user statement is on the wire: an abort must cancel it in the server. */
  #inFlight = false;
  #cancelling: Promise<void> | undefined;
  #abandonTimer: NodeJS.Timeout | undefined;
  /** Rejects when an abort happened and the server did not answer in time: stop waiting for it. */
  readonly #abandoned: Promise<never>;
  #abandon: (() => void) | undefined;

  constructor(settings: Settings, ctx: JobContext) {
    this.#settings = settings;
    this.#signal = ctx.signal;
    this.#client = new pg.Client({
      connectionString: settings.url,
      connectionTimeoutMillis: settings.connectTimeoutMs,
      application_name: `${settings.applicationName} ${ctx.job.id}`.slice(0, 63),
      types: resultTypes,
    });
    // An idle client whose connection breaks emits "error"; unheard, that would crash the process.
    // The failure also reaches the query in progress, which is where it is reported.
    this.#client.on("error", () => {});
    this.#abandoned = new Promise<never>((_, reject) => {
      this.#abandon = () => reject(new Error("abandoned"));
    });
    this.#abandoned.catch(() => {});
    this.#timeoutMs = Math.min(
      PG_MAX_TIMEOUT_MS,
      Math.max(1, ctx.job.timeoutMs ?? settings.statementTimeoutMs),
    );
  }

  async run(payload: { sql: string; params: unknown[] }): Promise<SqlExecResult> {
    const signal = this.#signal;
    if (signal.aborted) throw signal.reason;
    const onAbort = () => this.onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    let phase: Phase = "connect";
    try {
      await this.guard(this.#client.connect(), 0);
      phase = "run";
      await this.guard(this.#client.query("BEGIN"));
      // set_config(…, true) is SET LOCAL, with the value bound rather than spliced into the text.
      // The role is checked in the same round trip, before any of the job's SQL runs.
      const setup = await this.guard(
        this.#client.query<{ pid: number; role: string; reasons: string[] | null }>(
          "SELECT pg_backend_pid() AS pid, set_config('statement_timeout', $1, true), current_user AS role, " +
            `${this.#settings.allowSuperuser ? "NULL" : TOO_STRONG_REASONS_SQL} AS reasons`,
          [String(this.#timeoutMs)],
        ),
      );
      const session = setup.rows[0];
      if (session?.reasons && session.reasons.length > 0) {
        throw tooStrongError({ role: session.role, tooStrong: session.reasons });
      }
      this.#pid = session?.pid;
      this.throwIfAborted();
      this.#inFlight = true;
      const result = await this.guard(this.query(payload.sql, payload.params));
      this.#inFlight = false;
      // Aborted while the statement ran, even if it got to finish: roll back rather than commit.
      this.throwIfAborted();
      phase = "commit";
      await this.guard(this.#client.query("COMMIT"));
      return result;
    } catch (error) {
      this.#inFlight = false;
      await this.#cancelling;
      if (phase !== "connect") await this.rollback();
      if (signal.aborted) throw signal.reason;
      throw toSqlError(error, phase);
    } finally {
      signal.removeEventListener("abort", onAbort);
      await this.#cancelling;
      await this.close();
      clearTimeout(this.#abandonTimer);
    }
  }

  private throwIfAborted(): void {
    if (this.#signal.aborted) throw this.#signal.reason;
  }

  /** Waits for `work`, but after an abort only `settleMs` more (connecting: not at all). */
  private guard<T>(work: Promise<T>, settleMs = ABORT_SETTLE_MS): Promise<T> {
    if (this.#signal.aborted && settleMs === 0) {
      work.catch(() => {});
      return Promise.reject(this.#signal.reason);
    }
    if (settleMs === 0) {
      const aborted = new Promise<never>((_, reject) => {
        this.#signal.addEventListener("abort", () => reject(this.#signal.reason), { once: true });
      });
      aborted.catch(() => {});
      work.catch(() => {});
      return Promise.race([work, aborted]);
    }
    return Promise.race([work, this.#abandoned]);
  }

  private onAbort(): void {
    this.#abandonTimer = setTimeout(() => this.#abandon?.(), ABORT_SETTLE_MS);
    if (this.#inFlight && this.#pid !== undefined) this.#cancelling = this.cancelBackend(this.#pid);
  }

  /** pg_cancel_backend from a second connection; best effort (the abandon timer is the backstop). */
  private async cancelBackend(pid: number): Promise<void> {
    const canceller = new pg.Client({
      connectionString: this.#settings.url,
      connectionTimeoutMillis: Math.min(this.#settings.connectTimeoutMs, ABORT_SETTLE_MS),
      application_name: `${this.#settings.applicationName} cancel`.slice(0, 63),
    });
    canceller.on("error", () => {});
    try {
      await canceller.connect();
      await canceller.query("SELECT pg_cancel_backend($1)", [pid]);
    } catch {
      // Could not reach the server: the abandon timer drops our connection instead.
    } finally {
      await canceller.end().catch(() => {});
    }
  }

  /**
   * Runs the statement through the extended protocol (Parse/Bind/Execute), even with no params:
   * PostgreSQL then refuses more than one statement. Rows stream in; past the caps they are
   * dropped, not kept, so a large result costs time but not memory.
   */
  private query(sql: string, params: unknown[]): Promise<SqlExecResult> {
    const { maxRows, maxResultBytes } = this.#settings;
    return new Promise((resolve, reject) => {
      const rows: unknown[] = [];
      let bytes = 0;
      let truncated = false;
      let unencodable: unknown;
      // queryMode is in pg 8.11+ but not in @types/pg.
      const config = { text: sql, values: params, queryMode: "extended" } as pg.QueryConfig;
      const query = new pg.Query<Record<string, unknown>>(config);
      query.on("row", (row: Record<string, unknown>) => {
        if (truncated || unencodable !== undefined) return;
        if (rows.length >= maxRows) {
          truncated = true;
          return;
        }
        try {
          const value = toJsonRow(row);
          // Checked as Ferry's default serializer will write it: depth, forbidden keys, size.
          const size = jsonSerializer.encode(value).byteLength + 1;
          if (bytes + size > maxResultBytes) {
            truncated = true;
            return;
          }
          bytes += size;
          rows.push(value);
        } catch (error) {
          unencodable = error;
        }
      });
      query.on("error", reject);
      query.on("end", (result) => {
        if (unencodable !== undefined) {
          reject(unencodable);
          return;
        }
        resolve({
          command: result.command ?? "",
          rowCount: result.rowCount ?? rows.length,
          rows,
          truncated,
        });
      });
      this.#client.query(query);
    });
  }

  private async rollback(): Promise<void> {
    try {
      await this.guard(this.#client.query("ROLLBACK"));
    } catch {
      // Dropping the connection (close) rolls back in the server.
    }
  }

  private async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const ended = this.#client.end().catch(() => {});
    await Promise.race([
      ended,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ABORT_SETTLE_MS))),
    ]);
    clearTimeout(timer);
  }
}
