/**
 * The remote client's options, with their defaults in one place: which daemon, which token, how
 * to speak to it. Checked here, before anything is sent.
 */
import { DEFAULT_SERVER } from "../core/defaults.js";
import { type Duration, parseDuration } from "../core/duration.js";
import { invalidArgument } from "../core/errors.js";

/** TLS settings for an `https://` server (Node's TLS options of the same names). */
export interface ClientTlsOptions {
  /** CA certificates to trust (PEM), e.g. for a daemon with a self-signed certificate. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** A client certificate and key (PEM), for a proxy that asks for mutual TLS. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Refuse a certificate the CAs do not vouch for. @defaultValue true */
  readonly rejectUnauthorized?: boolean;
}

export interface ConnectOptions {
  /** The daemon's URL. @defaultValue FERRY_SERVER, else http://127.0.0.1:50051 */
  readonly server?: string;
  /** The API token. @defaultValue FERRY_TOKEN; none when unset (a daemon with auth off) */
  readonly token?: string;
  readonly tls?: ClientTlsOptions;
  /**
   * "grpc" (gRPC over HTTP/2) or "connect-json" (the Connect protocol with JSON bodies over
   * HTTP/1.1, what curl speaks). @defaultValue "grpc"
   */
  readonly transport?: "grpc" | "connect-json";
  /**
   * How long `wait`, `waitAny`, `drain` and `watch` keep trying to resume while the daemon cannot
   * be reached (it restarts, say) before they fail. @defaultValue "60s"
   */
  readonly resumeFor?: Duration;
}

export interface ResolvedConnectOptions {
  readonly server: string;
  readonly token: string | undefined;
  readonly tls: ClientTlsOptions | undefined;
  readonly transport: "grpc" | "connect-json";
  readonly resumeForMs: number;
}

/** A token is sent in a header: printable ASCII only, and bounded. */
const TOKEN_SHAPE = /^[\x21-\x7e]{1,4096}$/;

export function resolveConnectOptions(
  options: ConnectOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedConnectOptions {
  const server = (options.server ?? env.FERRY_SERVER?.trim()) || DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw invalidArgument(`server must be a URL such as ${DEFAULT_SERVER}, got ${JSON.stringify(server)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalidArgument(`server must be an http:// or https:// URL, got ${JSON.stringify(server)}`);
  }
  const token = options.token ?? (env.FERRY_TOKEN?.trim() || undefined);
  if (token !== undefined && !TOKEN_SHAPE.test(token)) {
    throw invalidArgument("token must be the printable text `ferry token create` gave");
  }
  const transport = options.transport ?? "grpc";
  if (transport !== "grpc" && transport !== "connect-json") {
    throw invalidArgument('transport must be "grpc" or "connect-json"');
  }
  return {
    // Connect joins paths to the base URL: no trailing slash.
    server: url.href.replace(/\/+$/, ""),
    token,
    tls: options.tls,
    transport,
    resumeForMs: parseDuration(options.resumeFor ?? "60s", "resumeFor"),
  };
}
