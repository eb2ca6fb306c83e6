/**
 * The library's arguments as RPC messages: payloads as JSON values, durations as strings, times
 * as RFC 3339, and a `defineJob` definition's name, defaults and schema applied as the library's
 * launch applies them, before anything is sent.
 */
import { fromJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { type Value, ValueSchema } from "@bufbuild/protobuf/wkt";
import { type Duration, parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, invalidArgument, notFound } from "../core/errors.js";
import type { Handle } from "../core/job.js";
import { checkHandlerName } from "../core/names.js";
import { type LaunchOptions, resolveLaunchOptions } from "../core/options.js";
import type { HandleSchema, LaunchOptionsSchema, Handle as PbHandle } from "../gen/ferry/v1/jobs_pb.js";
import type { AnyJobDefinition, JobDefinition } from "../worker/handler.js";

/** Launch options a remote caller may give: the daemon sets the owner, and has no transaction of yours. */
export type RemoteLaunchOptions = Omit<LaunchOptions, "tx" | "owner">;

/** A duration as the daemon reads it ("30s"; a number of ms as "1500ms"), once it is valid. */
export function durationText(value: Duration, name: string): string {
  const ms = parseDuration(value, name);
  return typeof value === "string" ? value : `${ms}ms`;
}

/** Any JSON-able payload as a protobuf Value; what JSON cannot hold is FERRY_SERIALIZATION. */
export function payloadValue(payload: unknown): Value {
  return payloadWithSize(payload).value;
}

/** The payload as a Value, and its size as JSON text (what a batch of launches is bounded by). */
function payloadWithSize(payload: unknown): { value: Value; bytes: number } {
  let text: string;
  let json: JsonValue;
  try {
    // Through JSON.stringify (Dates as strings, no undefined), refusing what it would silently
    // drop or empty, as the library's serializer refuses it: nothing arrives other than was sent.
    text = JSON.stringify(payload ?? null, plainJsonOnly) ?? "null";
    json = JSON.parse(text) as JsonValue;
  } catch (error) {
    throw new FerryError(ErrorCode.Serialization, `the payload is not JSON: ${(error as Error).message}`);
  }
  return { value: fromJson(ValueSchema, json), bytes: text.length };
}

/** JSON.stringify's replacer: each value as toJSON left it, once JSON holds it as it is. */
function plainJsonOnly(_key: string, value: unknown): unknown {
  switch (typeof value) {
    case "function":
    case "symbol":
      throw new Error(`cannot serialize a ${typeof value}`);
    case "number":
      if (!Number.isFinite(value)) throw new Error("cannot serialize NaN or Infinity");
      return value;
    case "object": {
      if (value === null || Array.isArray(value)) return value;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        // A Map, Set, typed array or class instance would arrive as {} or an index object.
        const name: unknown = (value as { constructor?: { name?: unknown } }).constructor?.name;
        throw new Error(
          `cannot serialize a ${typeof name === "string" && name !== "" ? name : "object"} as JSON`,
        );
      }
      return value;
    }
    default:
      return value;
  }
}

/**
 * A handle as its message (the daemon checks the rest). As in the library, only what is no object
 * at all is a bad argument: an id or cookie that could never match answers as a wrong one does.
 */
export function handleMessage(handle: Handle): MessageInitShape<typeof HandleSchema> {
  if (handle === null || typeof handle !== "object") throw invalidArgument("a handle is { id, cookie }");
  if (typeof handle.id !== "string" || typeof handle.cookie !== "string") throw notFound();
  return { id: handle.id, cookie: handle.cookie };
}

/** One launch, checked and shaped as the library's launch would: its handler name, payload and options. */
export interface PreparedLaunch {
  readonly handler: string;
  readonly payload: Value;
  readonly options: MessageInitShape<typeof LaunchOptionsSchema>;
  /** The job's own timeout, for `run`'s wait. */
  readonly timeout: Duration | undefined;
  /** About how many bytes it takes on the wire: its payload as JSON, and a margin for the rest. */
  readonly bytes: number;
}

/** Bytes allowed for a launch's handler name, options and framing beside its payload. */
const LAUNCH_MARGIN_BYTES = 1024;

/** The Launch message of a prepared launch. */
export const launchMessage = ({ handler, payload, options }: PreparedLaunch) => ({
  handler,
  payload,
  options,
});

export function prepareRemoteLaunch(
  handler: string | JobDefinition<unknown, unknown> | AnyJobDefinition,
  payload: unknown,
  options: RemoteLaunchOptions | undefined,
): PreparedLaunch {
  const definition = typeof handler === "string" ? undefined : handler;
  const name = checkHandlerName(definition === undefined ? handler : definition.name);
  let checked: unknown = payload ?? null;
  if (definition?.schema !== undefined) {
    try {
      checked = definition.schema.parse(checked);
    } catch (error) {
      throw invalidArgument(`payload for ${name} is invalid: ${(error as Error).message}`.slice(0, 512));
    }
  }
  const merged: RemoteLaunchOptions = { ...(definition?.defaults ?? {}), ...(options ?? {}) };
  const { value, bytes } = payloadWithSize(checked);
  return {
    handler: name,
    payload: value,
    options: launchOptionsMessage(merged),
    timeout: merged.timeout,
    bytes: bytes + LAUNCH_MARGIN_BYTES,
  };
}

export function launchOptionsMessage(
  options: RemoteLaunchOptions,
): MessageInitShape<typeof LaunchOptionsSchema> {
  if ("tx" in options || "owner" in options) {
    throw invalidArgument(
      "the remote client takes no tx or owner: the daemon sets the owner from your token",
    );
  }
  // The library's own checks, here, before sending: the same refusals with the same messages,
  // and nothing the message has no field for (a misspelt option) is dropped on the way.
  resolveLaunchOptions(options);
  const o = options;
  const text = (value: Duration | undefined, name: string) =>
    value === undefined ? undefined : durationText(value, name);
  const out: MessageInitShape<typeof LaunchOptionsSchema> = {
    ...(o.queue === undefined ? {} : { queue: o.queue }),
    ...(o.priority === undefined ? {} : { priority: o.priority }),
    ...(o.delay === undefined ? {} : { delay: text(o.delay, "delay") }),
    ...(o.runAt === undefined ? {} : { runAt: timeText(o.runAt, "runAt") }),
    ...(o.attempts === undefined ? {} : { attempts: o.attempts }),
    ...(o.timeout === undefined ? {} : { timeout: text(o.timeout, "timeout") }),
    ...(o.uniqueKey === undefined ? {} : { uniqueKey: o.uniqueKey }),
    ...(o.serializer === undefined ? {} : { serializer: o.serializer }),
    ...(o.label === undefined ? {} : { label: o.label }),
    ...(o.group === undefined ? {} : { group: o.group }),
    ...(o.resultTtl === undefined ? {} : { resultTtl: text(o.resultTtl, "resultTtl") }),
    ...(o.dependsOn === undefined ? {} : { dependsOn: o.dependsOn.map(handleMessage) as PbHandle[] }),
    ...(o.retryOn === undefined ? {} : { retryOn: [...o.retryOn] }),
    ...(o.ignoreOn === undefined ? {} : { ignoreOn: [...o.ignoreOn] }),
  };
  if (o.backoff !== undefined) {
    const { type, base, max, jitter } = o.backoff;
    out.backoff = {
      type,
      base: base === undefined ? "" : durationText(base, "backoff.base"),
      max: max === undefined ? "" : durationText(max, "backoff.max"),
      ...(jitter === undefined ? {} : { jitter }),
    };
  }
  return out;
}

export function timeText(date: Date, name: string): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime()))
    throw invalidArgument(`${name} must be a valid Date`);
  return date.toISOString();
}
