/**
 * One error class for everything a user can cause, with a closed set of stable codes.
 * Modelled on connect-es's ConnectError: a code enum, a `from(unknown)` normaliser.
 */
export const ErrorCode = {
  InvalidArgument: "FERRY_INVALID_ARGUMENT",
  NotFound: "FERRY_NOT_FOUND",
  Unauthenticated: "FERRY_UNAUTHENTICATED",
  PermissionDenied: "FERRY_PERMISSION_DENIED",
  QuotaExceeded: "FERRY_QUOTA_EXCEEDED",
  PayloadTooLarge: "FERRY_PAYLOAD_TOO_LARGE",
  UnknownHandler: "FERRY_UNKNOWN_HANDLER",
  Timeout: "FERRY_TIMEOUT",
  Cancelled: "FERRY_CANCELLED",
  Serialization: "FERRY_SERIALIZATION",
  StoreUnavailable: "FERRY_STORE_UNAVAILABLE",
  NotFinished: "FERRY_NOT_FINISHED",
  HandlerCrashed: "FERRY_HANDLER_CRASHED",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const knownCodes = new Set<string>(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && knownCodes.has(value);
}

export class FerryError extends Error {
  override readonly name = "FerryError";
  readonly code: ErrorCode;
  /** Structured, user-safe extra facts (never secrets, never payloads). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }

  /** Normalise anything thrown into a FerryError, keeping FerryErrors as they are. */
  static from(reason: unknown, fallback: ErrorCode = ErrorCode.HandlerCrashed): FerryError {
    if (reason instanceof FerryError) return reason;
    const message = reason instanceof Error ? safeMessage(reason) : String(reason);
    return new FerryError(fallback, message, { cause: reason });
  }
}

function safeMessage(error: Error): string {
  try {
    return String(error.message);
  } catch {
    return "error with an unreadable message";
  }
}

export const invalidArgument = (message: string, details?: Record<string, unknown>): FerryError =>
  new FerryError(ErrorCode.InvalidArgument, message, details === undefined ? undefined : { details });

/**
 * The one answer for an unknown id, a wrong cookie and another owner's job or schedule alike, so
 * ids can't be probed: every not-found answer about one kind of thing is built here, byte for byte
 * the same whatever the reason.
 */
export const notFound = (thing: "job" | "schedule" = "job"): FerryError =>
  new FerryError(ErrorCode.NotFound, thing === "job" ? "no such job" : "no such schedule");
