import { DEFAULT_ERROR_MAX_BYTES } from "./defaults.js";
import { ErrorCode, FerryError } from "./errors.js";
import type { ErrorInfo } from "./job.js";
import { cutUtf8 } from "./utf8.js";

export const ERROR_MAX_BYTES = DEFAULT_ERROR_MAX_BYTES;

/** A handler that throws these made a mistake that another attempt would repeat. */
const NOT_RETRYABLE: ReadonlySet<string> = new Set([
  ErrorCode.InvalidArgument,
  ErrorCode.PayloadTooLarge,
  ErrorCode.Serialization,
  ErrorCode.UnknownHandler,
  ErrorCode.PermissionDenied,
  ErrorCode.Unauthenticated,
]);

/** Reads a property of a thrown thing that may be a Proxy, have throwing getters, or be null. */
function read(value: unknown, key: string): unknown {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return undefined;
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return String(value);
  try {
    const message = read(value, "message");
    if (typeof message === "string") return message;
    const text = String(value);
    if (text !== "[object Object]") return text;
    return JSON.stringify(value) ?? "unserialisable value";
  } catch {
    return "thrown value that cannot be described";
  }
}

const codeShape = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export interface ShapeOptions {
  readonly attempt: number;
  readonly maxBytes?: number;
  /** Overrides what the thrown value says about itself (timeouts, crashes, discards). */
  readonly code?: string;
  readonly retryable?: boolean;
}

/**
 * Turns anything a handler threw (strings, null, circular objects, throwing getters, 10 MB
 * messages) into a stored ErrorInfo whose strings are valid UTF-8 of at most `maxBytes`.
 * Never throws.
 */
export function toErrorInfo(thrown: unknown, options: ShapeOptions): ErrorInfo {
  const maxBytes = options.maxBytes ?? ERROR_MAX_BYTES;
  const ownCode = read(thrown, "code");
  const code =
    options.code ??
    (typeof ownCode === "string" && codeShape.test(ownCode) ? ownCode : ErrorCode.HandlerCrashed);
  const ownRetryable = read(thrown, "retryable");
  const retryable =
    options.retryable ??
    (typeof ownRetryable === "boolean"
      ? ownRetryable
      : !(thrown instanceof FerryError && NOT_RETRYABLE.has(thrown.code)));
  const info: { -readonly [K in keyof ErrorInfo]: ErrorInfo[K] } = {
    code,
    message: cutUtf8(describe(thrown), maxBytes),
    retryable,
    attempt: options.attempt,
  };
  const detail = read(thrown, "detail");
  if (typeof detail === "string") info.detail = cutUtf8(detail, maxBytes);
  const fields = read(thrown, "fields");
  if (fields !== null && typeof fields === "object") info.fields = shapeFields(fields, maxBytes);
  return info;
}

function shapeFields(fields: object, maxBytes: number): Record<string, string> {
  const out: Record<string, string> = {};
  let count = 0;
  try {
    for (const key of Object.keys(fields)) {
      if (++count > 16 || !codeShape.test(key)) continue;
      const value = read(fields, key);
      if (typeof value === "string" || typeof value === "number") out[key] = cutUtf8(String(value), maxBytes);
    }
  } catch {
    // A Proxy that throws on ownKeys: keep what was read.
  }
  return out;
}

/** Re-creates a throwable FerryError from a stored ErrorInfo (for `run`, CLI exits, RPC). */
export function errorFromInfo(info: ErrorInfo): FerryError {
  const code = Object.values(ErrorCode).includes(info.code as ErrorCode)
    ? (info.code as ErrorCode)
    : ErrorCode.HandlerCrashed;
  return new FerryError(code, info.message, { details: { ...info } });
}
