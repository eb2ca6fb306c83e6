/**
 * The daemon's log: pino, one JSON object per line on stdout. Secrets and job data never reach it:
 * the paths below are replaced by "[redacted]" wherever a log call passes them, and the daemon logs
 * ids, codes and addresses, never payloads, results, cookies or tokens.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { pino } from "pino";
import type { Logger } from "../core/logger.js";
import { ERROR_CODE_HEADER } from "./rpc-errors.js";

export type { Logger };

/** Any object logged with one of these keys, at the top or one level down, shows "[redacted]". */
const SECRET_KEYS = [
  "token",
  "authorization",
  "x-api-key",
  "cookie",
  "payload",
  "result",
  "password",
  "secret",
];

export const REDACTED_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((key) => `*.${key}`),
  ...SECRET_KEYS.map((key) => `*.*.${key}`),
  'headers["x-api-key"]',
  "*.headers.authorization",
];

export function daemonLogger(destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      name: "ferry",
      level: process.env.FERRY_LOG_LEVEL ?? "info",
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    // A stream given by a test; else stdout, written synchronously so nothing is lost on exit.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/**
 * Logs the calls that failed inside (FERRY_INTERNAL): the caller saw only "internal error", so
 * the cause is kept here, by its message and the call's name, never the request.
 */
export function logInternalErrors(log: Logger): Interceptor {
  return (next) => async (request) => {
    try {
      return await next(request);
    } catch (error) {
      const rpc = ConnectError.from(error);
      if (rpc.code === Code.Internal && rpc.metadata.get(ERROR_CODE_HEADER) === "FERRY_INTERNAL") {
        const cause = rpc.cause instanceof Error ? rpc.cause.message : "unknown";
        log.error(
          { service: request.service.typeName, method: request.method.name, cause },
          "internal error",
        );
      }
      throw error;
    }
  };
}
