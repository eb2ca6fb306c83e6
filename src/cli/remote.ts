/**
 * The command line's link to a daemon: the remote client `ferry/client` (`FERRY_SERVER`, default
 * http://127.0.0.1:50051, and `FERRY_TOKEN`) over Connect JSON on HTTP/1.1, and the SPEC's exit
 * codes for the FerryErrors it throws. The job commands call the client, so `--json` prints the
 * library's own answers; the admin commands the client has no call for (tokens, grants, plugins)
 * use the AdminService client on the same connection.
 */
import { ConnectError } from "@connectrpc/connect";
import { type Connection, connectionOn, connectJsonTransport } from "../client/connection.js";
import { toFerryError } from "../client/errors.js";
import { FerryClient } from "../client/ferry-client.js";
import { resolveConnectOptions } from "../client/options.js";
import { ErrorCode, FerryError } from "../core/errors.js";

/** Exit codes from the SPEC: 0 ok, 1 job failed or cancelled, 2 usage, 3 not found/denied, 4 server unreachable. */
export const EXIT = { ok: 0, jobFailed: 1, usage: 2, notFound: 3, unreachable: 4 } as const;

export interface Remote {
  readonly server: string;
  /** The library's caller side, for every command it has a call for. */
  readonly client: FerryClient;
  /** The raw services on the client's connection, for the admin calls the library does not have. */
  readonly connection: Connection;
}

export function remoteFromEnv(env: NodeJS.ProcessEnv = process.env): Remote {
  // No resuming: a command against a daemon that is down says so at once (exit 4), as a script
  // expects, rather than retrying for the client's default minute.
  const options = resolveConnectOptions({ transport: "connect-json", resumeFor: 0 }, env);
  const connection = connectionOn(options.server, connectJsonTransport(options));
  return { server: options.server, client: new FerryClient(connection, options.resumeForMs), connection };
}

/** The library's codes for each exit code but 1 (a job that failed, and anything else). */
const EXIT_OF: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.InvalidArgument]: EXIT.usage,
  // The daemon answers these as bad arguments too (INVALID_ARGUMENT): a usage error.
  [ErrorCode.PayloadTooLarge]: EXIT.usage,
  [ErrorCode.UnknownHandler]: EXIT.usage,
  [ErrorCode.Serialization]: EXIT.usage,
  [ErrorCode.NotFound]: EXIT.notFound,
  [ErrorCode.Unauthenticated]: EXIT.notFound,
  [ErrorCode.PermissionDenied]: EXIT.notFound,
  // A quota is a refusal like a denied role: nothing was stored, trying again at once won't help.
  [ErrorCode.QuotaExceeded]: EXIT.notFound,
};

/** A failed command as one line for a person, and the exit code for a script. */
export function explainFailure(
  error: unknown,
  server: () => string,
): { readonly message: string; readonly exitCode: number } {
  // The admin commands' raw calls throw RPC errors: read as the client reads them.
  const e = error instanceof ConnectError ? toFerryError(error) : error;
  if (!(e instanceof FerryError)) return { message: String(e), exitCode: EXIT.jobFailed };
  if (e.details?.unreachable === true) {
    const why = e.cause instanceof ConnectError ? e.cause.rawMessage : e.message;
    return {
      message: `cannot reach the daemon at ${server()} (${why}): is it running? FERRY_SERVER names it`,
      exitCode: EXIT.unreachable,
    };
  }
  const hint = e.code === ErrorCode.Unauthenticated ? " (FERRY_TOKEN holds the token)" : "";
  return { message: `${e.code}: ${e.message}${hint}`, exitCode: EXIT_OF[e.code] ?? EXIT.jobFailed };
}
