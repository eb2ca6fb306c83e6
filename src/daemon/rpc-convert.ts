/**
 * Between the RPC messages (src/gen/ferry/v1/jobs_pb.ts) and the library's types: handles,
 * launch options, statuses, results and list rows. Times go out as RFC 3339 strings, payloads and
 * results as JSON values. Everything that shows a job's error or payload takes the caller's
 * `JobDetail`, so no answer can forget to hide them from a viewer.
 */
import { fromJson, type JsonValue, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { type Value, ValueSchema } from "@bufbuild/protobuf/wkt";
import type { ListFilter } from "../api/ferry.js";
import type { Role } from "../auth/access.js";
import { invalidArgument } from "../core/errors.js";
import type { ErrorInfo, Handle, JobListRow, JobResult, JobState, JobStatus } from "../core/job.js";
import type { LaunchOptions } from "../core/options.js";
import type {
  ErrorInfoSchema,
  JobListRowSchema,
  JobResultSchema,
  JobStatusSchema,
  ListRequest,
  Handle as PbHandle,
  LaunchOptions as PbLaunchOptions,
} from "../gen/ferry/v1/jobs_pb.js";
import { valueProblem } from "./strict-json.js";

const STATES: readonly JobState[] = ["scheduled", "queued", "running", "completed", "failed", "cancelled"];

/**
 * The request's handle. An empty id or cookie (a deduplicated launch's handle has no cookie) goes
 * on to the library, which answers it as any handle that reaches nothing, after the same work.
 */
export function handleOf(handle: PbHandle | undefined): Handle {
  if (handle === undefined) throw invalidArgument("handle {id, cookie} is required");
  return { id: handle.id, cookie: handle.cookie };
}

/** The payload as the JSON value it is; absent means null. */
/** A payload as JSON, once it keeps the strict rules (binary protobuf skipped the JSON guard). */
export function payloadOf(payload: Value | undefined): JsonValue {
  if (payload === undefined) return null;
  const problem = valueProblem(payload);
  if (problem !== undefined) throw invalidArgument(problem);
  return toJson(ValueSchema, payload);
}

export const jsonValue = (json: unknown): Value => fromJson(ValueSchema, (json ?? null) as JsonValue);

/**
 * A decoded result as the JSON the wire carries: what JSON.stringify gives (a Date as its text,
 * as the library's caller reads it in JSON), a bigint as its decimal text. Never a failure: the
 * result is already collected when this runs, and a throw here would lose it.
 */
export function resultJson(value: unknown): Value {
  const text = JSON.stringify(value ?? null, (_key, v: unknown) =>
    typeof v === "bigint" ? v.toString() : v,
  );
  return jsonValue(text === undefined ? null : JSON.parse(text));
}

/** The caller's options; `owner` is the daemon's to set, from the caller's token. */
export function launchOptionsOf(options: PbLaunchOptions | undefined, owner: string): LaunchOptions {
  const out: LaunchOptions = { owner };
  if (options === undefined) return out;
  if (options.queue !== undefined) out.queue = options.queue;
  if (options.priority !== undefined) out.priority = options.priority;
  if (options.delay !== undefined) out.delay = options.delay;
  if (options.runAt !== undefined) {
    const at = new Date(options.runAt);
    if (Number.isNaN(at.getTime())) throw invalidArgument("options.run_at must be an RFC 3339 time");
    out.runAt = at;
  }
  if (options.attempts !== undefined) out.attempts = options.attempts;
  if (options.backoff !== undefined) {
    const { type, base, max, jitter } = options.backoff;
    if (type !== "fixed" && type !== "exponential") {
      throw invalidArgument('options.backoff.type must be "fixed" or "exponential"');
    }
    out.backoff = {
      type,
      ...(base === "" ? {} : { base }),
      ...(max === "" ? {} : { max }),
      ...(jitter === undefined ? {} : { jitter }),
    };
  }
  if (options.timeout !== undefined) out.timeout = options.timeout;
  if (options.uniqueKey !== undefined) out.uniqueKey = options.uniqueKey;
  if (options.serializer !== undefined) out.serializer = options.serializer;
  if (options.label !== undefined) out.label = options.label;
  if (options.dependsOn.length > 0) out.dependsOn = options.dependsOn.map(handleOf);
  if (options.group !== undefined) out.group = options.group;
  if (options.retryOn.length > 0) out.retryOn = options.retryOn;
  if (options.ignoreOn.length > 0) out.ignoreOn = options.ignoreOn;
  if (options.resultTtl !== undefined) out.resultTtl = options.resultTtl;
  return out;
}

export function listFilterOf(request: ListRequest): ListFilter {
  const filter: ListFilter = {};
  if (request.state !== undefined) {
    if (!(STATES as readonly string[]).includes(request.state)) {
      throw invalidArgument(`state must be one of ${STATES.join(", ")}`);
    }
    filter.state = request.state as JobState;
  }
  if (request.queue !== undefined) filter.queue = request.queue;
  if (request.label !== undefined) filter.label = request.label;
  if (request.handler !== undefined) filter.handler = request.handler;
  return filter;
}

const time = (date: Date | null): string | undefined => (date === null ? undefined : date.toISOString());

/**
 * How much of a job a caller sees: "owners" (everything, and whose job it is: admins), "full"
 * (everything but the owner), or "codes" (the error's code, never its message, fields or a
 * payload preview: those are where payload secrets end up).
 */
export type JobDetail = "owners" | "full" | "codes";

/** Viewers watch over everyone's jobs: they see codes only. Admins see owners. */
export const jobDetailFor = (role: Role): JobDetail =>
  role === "viewer" ? "codes" : role === "admin" ? "owners" : "full";

/** The owner, for a caller who may see it. */
const ownerOf = (owner: string | null, detail: JobDetail): { owner?: string } =>
  owner === null || detail !== "owners" ? {} : { owner };

function errorInfoOf(
  info: ErrorInfo | null | undefined,
  detail: JobDetail,
): MessageInitShape<typeof ErrorInfoSchema> | undefined {
  if (info === null || info === undefined) return undefined;
  const text = detail !== "codes";
  return {
    code: info.code,
    message: text ? info.message : "",
    retryable: info.retryable,
    attempt: info.attempt,
    fields: text ? { ...(info.fields ?? {}) } : {},
  };
}

export function statusOut(status: JobStatus, detail: JobDetail): MessageInitShape<typeof JobStatusSchema> {
  return {
    id: status.id,
    handler: status.handler,
    queue: status.queue,
    state: status.state,
    attempts: status.attempts,
    maxAttempts: status.maxAttempts,
    ...(status.progress === null ? {} : { progress: status.progress }),
    ...(status.label === null ? {} : { label: status.label }),
    priority: status.priority,
    launchedAt: status.launchedAt.toISOString(),
    runAt: status.runAt.toISOString(),
    ...(status.startedAt === null ? {} : { startedAt: time(status.startedAt) }),
    ...(status.finishedAt === null ? {} : { finishedAt: time(status.finishedAt) }),
    consumed: status.consumed,
    cancelRequested: status.cancelRequested,
    ...(status.errorInfo === null ? {} : { errorInfo: errorInfoOf(status.errorInfo, detail) }),
    ...ownerOf(status.owner, detail),
  };
}

export function resultOut(result: JobResult, detail: JobDetail): MessageInitShape<typeof JobResultSchema> {
  return {
    id: result.id,
    state: result.state,
    ...("value" in result ? { value: resultJson(result.value) } : {}),
    ...(result.error === undefined ? {} : { error: errorInfoOf(result.error, detail) }),
    attempts: result.attempts,
    ...(result.startedAt === null ? {} : { startedAt: time(result.startedAt) }),
    ...(result.finishedAt === null ? {} : { finishedAt: time(result.finishedAt) }),
  };
}

export function listRowOut(row: JobListRow, detail: JobDetail): MessageInitShape<typeof JobListRowSchema> {
  const text = detail !== "codes";
  return {
    id: row.id,
    handler: row.handler,
    queue: row.queue,
    state: row.state,
    launchedAt: row.launchedAt.toISOString(),
    ...(row.startedAt === null ? {} : { startedAt: time(row.startedAt) }),
    ...(row.finishedAt === null ? {} : { finishedAt: time(row.finishedAt) }),
    attempts: row.attempts,
    ...(row.label === null ? {} : { label: row.label }),
    ...(row.progress === null ? {} : { progress: row.progress }),
    ...(row.preview === null || !text ? {} : { preview: row.preview }),
    ...(row.lastError === null || !text ? {} : { lastError: row.lastError }),
    ...(row.lastErrorCode === null ? {} : { lastErrorCode: row.lastErrorCode }),
    consumed: row.consumed,
    ...ownerOf(row.owner, detail),
  };
}
