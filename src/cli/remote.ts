/**
 * The command line's link to a daemon: the remote client's connection (`FERRY_SERVER`, default
 * http://127.0.0.1:50051, and `FERRY_TOKEN`), Connect JSON over HTTP/1.1, and the SPEC's exit
 * codes for what goes wrong. The commands print the daemon's own messages (`--json` is the
 * daemon's JSON), so they call the services directly rather than through `ferry/client`.
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { transportFor } from "../client/connection.js";
import { resolveConnectOptions } from "../client/options.js";
import { ERROR_CODE_HEADER } from "../daemon/rpc-errors.js";

/** Exit codes from the SPEC: 0 ok, 1 job failed or cancelled, 2 usage, 3 not found/denied, 4 server unreachable. */
export const EXIT = { ok: 0, jobFailed: 1, usage: 2, notFound: 3, unreachable: 4 } as const;

export interface Remote {
  readonly server: string;
  client<S extends DescService>(service: S): Client<S>;
}

export function remoteFromEnv(env: NodeJS.ProcessEnv = process.env): Remote {
  const options = resolveConnectOptions({ transport: "connect-json" }, env);
  const transport = transportFor(options);
  return { server: options.server, client: (service) => createClient(service, transport) };
}

/** A failed call as one line for a person, and the exit code for a script. */
export function explainFailure(
  error: unknown,
  server: string,
): { readonly message: string; readonly exitCode: number } {
  const e = ConnectError.from(error);
  const ferryCode = e.metadata.get(ERROR_CODE_HEADER);
  const what = ferryCode ? `${ferryCode}: ${e.rawMessage}` : e.rawMessage;
  switch (e.code) {
    case Code.Unavailable:
      return {
        message: `cannot reach the daemon at ${server} (${e.rawMessage}): is it running? FERRY_SERVER names it`,
        exitCode: EXIT.unreachable,
      };
    case Code.Unauthenticated:
      return { message: `${what} (FERRY_TOKEN holds the token)`, exitCode: EXIT.notFound };
    case Code.PermissionDenied:
    case Code.NotFound:
      return { message: what, exitCode: EXIT.notFound };
    case Code.InvalidArgument:
      return { message: what, exitCode: EXIT.usage };
    default:
      return { message: what, exitCode: EXIT.jobFailed };
  }
}
