/**
 * Ferry's errors as RPC errors: the gRPC/Connect status a client library understands, and Ferry's
 * own stable code twice: as a typed detail (`ferry.v1.ErrorDetail`, where gRPC clients read error
 * details) and in the `ferry-error-code` trailer/header (for curl and scripts). The message is
 * the FerryError's own (written for users); anything that is not a FerryError becomes a plain
 * "internal error" with no message, stack or SQL from inside.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, FerryError } from "../core/errors.js";
import { ErrorDetailSchema } from "../gen/ferry/v1/errors_pb.js";

export const ERROR_CODE_HEADER = "ferry-error-code";

const STATUS: Readonly<Record<ErrorCode, Code>> = {
  FERRY_INVALID_ARGUMENT: Code.InvalidArgument,
  FERRY_NOT_FOUND: Code.NotFound,
  FERRY_UNAUTHENTICATED: Code.Unauthenticated,
  FERRY_PERMISSION_DENIED: Code.PermissionDenied,
  FERRY_QUOTA_EXCEEDED: Code.ResourceExhausted,
  FERRY_PAYLOAD_TOO_LARGE: Code.InvalidArgument,
  FERRY_UNKNOWN_HANDLER: Code.InvalidArgument,
  FERRY_TIMEOUT: Code.DeadlineExceeded,
  FERRY_CANCELLED: Code.Canceled,
  FERRY_SERIALIZATION: Code.InvalidArgument,
  FERRY_STORE_UNAVAILABLE: Code.Unavailable,
  FERRY_NOT_FINISHED: Code.FailedPrecondition,
  FERRY_HANDLER_CRASHED: Code.Internal,
};

export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (!(error instanceof FerryError)) {
    // The cause stays on the server (the daemon logs its message); the caller learns nothing of it.
    return new ConnectError(
      "internal error",
      Code.Internal,
      { [ERROR_CODE_HEADER]: INTERNAL_CODE },
      [ferryDetail(INTERNAL_CODE)],
      error,
    );
  }
  return new ConnectError(
    error.message,
    STATUS[error.code] ?? Code.Unknown,
    { [ERROR_CODE_HEADER]: error.code },
    [ferryDetail(error.code)],
  );
}

/** What a caller reads for an error that is not Ferry's own. */
export const INTERNAL_CODE = "FERRY_INTERNAL";

const ferryDetail = (code: string) => ({ desc: ErrorDetailSchema, value: { code } });

/** Runs one call, answering any error as an RPC error. */
export async function answering<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toConnectError(error);
  }
}

export const denied = (what: string): FerryError =>
  new FerryError(ErrorCode.PermissionDenied, `your role may not ${what}`);
