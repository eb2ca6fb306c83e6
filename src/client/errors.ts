/**
 * The daemon's errors as the library's: a `FerryError` with the same code, read from the typed
 * detail (`ferry.v1.ErrorDetail`), else the `ferry-error-code` header. An error with no Ferry
 * code never reached the daemon's job logic: a daemon that cannot be reached is
 * FERRY_STORE_UNAVAILABLE with `details.unreachable`, as a store that cannot be reached is.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, FerryError, isErrorCode } from "../core/errors.js";
import { ErrorDetailSchema } from "../gen/ferry/v1/errors_pb.js";

const ERROR_CODE_HEADER = "ferry-error-code";

/** Ferry's code on an RPC error, when the daemon gave one. */
export function ferryCodeOf(error: ConnectError): string | undefined {
  return error.findDetails(ErrorDetailSchema)[0]?.code ?? error.metadata.get(ERROR_CODE_HEADER) ?? undefined;
}

/**
 * The Ferry code for an RPC status with none of its own (Connect refused the call itself). Not
 * `canceled`: without a Ferry code that is a stream the daemon reset as it went away.
 */
const FROM_STATUS: Partial<Record<Code, ErrorCode>> = {
  [Code.InvalidArgument]: ErrorCode.InvalidArgument,
  [Code.NotFound]: ErrorCode.NotFound,
  [Code.Unauthenticated]: ErrorCode.Unauthenticated,
  [Code.PermissionDenied]: ErrorCode.PermissionDenied,
  [Code.ResourceExhausted]: ErrorCode.QuotaExceeded,
  [Code.DeadlineExceeded]: ErrorCode.Timeout,
  [Code.FailedPrecondition]: ErrorCode.NotFinished,
};

/** Anything a call threw, as a FerryError. */
export function toFerryError(error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  const rpc = ConnectError.from(error);
  const code = ferryCodeOf(rpc);
  if (code !== undefined) return ferryErrorOf(code, rpc.rawMessage, error);
  const mapped = FROM_STATUS[rpc.code];
  if (mapped !== undefined) return new FerryError(mapped, rpc.rawMessage, { cause: error });
  return new FerryError(ErrorCode.StoreUnavailable, `cannot reach the daemon: ${rpc.rawMessage}`, {
    cause: error,
    details: { unreachable: true },
  });
}

/** The error for a Ferry code the daemon answered, with its message. */
export function ferryErrorOf(code: string, message: string, cause?: unknown): FerryError {
  const options = cause === undefined ? {} : { cause };
  if (isErrorCode(code)) return new FerryError(code, message, options);
  // FERRY_INTERNAL: the daemon failed inside and says no more.
  return new FerryError(ErrorCode.StoreUnavailable, `the daemon failed: ${message}`, {
    ...options,
    details: { ferryCode: code },
  });
}

/** A failure worth trying again once the daemon is back: the call never reached its job logic. */
export function isUnreachable(error: unknown): boolean {
  if (error instanceof FerryError) return error.details?.unreachable === true;
  const rpc = ConnectError.from(error);
  if (ferryCodeOf(rpc) !== undefined) return false;
  // A daemon shutting down resets open streams (CANCEL): also a connection lost, not a refusal.
  return [Code.Unavailable, Code.Internal, Code.Unknown, Code.Aborted, Code.Canceled].includes(rpc.code);
}

/** Runs one call, answering any error as a FerryError. */
export async function calling<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toFerryError(error);
  }
}
