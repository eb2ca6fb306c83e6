/**
 * The command line's link to a daemon: `FERRY_SERVER` (default http://127.0.0.1:50051) and
 * `FERRY_TOKEN`, Connect JSON over HTTP/1.1, and the SPEC's exit codes for what goes wrong.
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ERROR_CODE_HEADER } from "../daemon/rpc-errors.js";

export const DEFAULT_SERVER = "http://127.0.0.1:50051";

/** Exit codes from the SPEC: 0 ok, 1 job failed or cancelled, 2 usage, 3 not found/denied, 4 server unreachable. */
export const EXIT = { ok: 0, jobFailed: 1, usage: 2, notFound: 3, unreachable: 4 } as const;

export interface Remote {
  readonly server: string;
  client<S extends DescService>(service: S): Client<S>;
}

export function remoteFromEnv(env: NodeJS.ProcessEnv = process.env): Remote {
  const server = env.FERRY_SERVER?.trim() || DEFAULT_SERVER;
  const token = env.FERRY_TOKEN?.trim();
  const withToken: Interceptor = (next) => async (request) => {
    if (token) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const transport = createConnectTransport({
    baseUrl: server,
    httpVersion: "1.1",
    // connect-node speaks binary by default; JSON is what curl sends, held to the daemon's
    // strict JSON rules (no prototype keys, no key twice) like any other JSON caller.
    useBinaryFormat: false,
    interceptors: [withToken],
  });
  return { server, client: (service) => createClient(service, transport) };
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
