/**
 * One port for everything: gRPC over HTTP/2, and Connect JSON, gRPC-Web and plain GET routes over
 * HTTP/1.1, all handed to the same Connect handler.
 *
 * - Cleartext: a connection is routed by its first bytes. HTTP/2 always opens with the preface
 *   `PRI * HTTP/2.0` (gRPC clients speak it without TLS by prior knowledge), which no HTTP/1.1
 *   method starts with.
 * - TLS (1.2 or newer): the client names its protocol in the handshake (ALPN `h2` or `http/1.1`),
 *   and one Node HTTP/2 server answers both.
 *
 * Before Connect sees a call, in this order: its connection against the cap per address
 * (connection-caps.ts), its header list's size (stream-limits.ts), a few HTTP/2 calls started per
 * turn (call-starts.ts), a URL that parses (request-target.ts), the host it names, CORS, its token
 * from the headers alone (admission.ts), its user's calls in flight (calls-in-flight.ts), then its
 * body against the size limit, the body budgets, the stall timeout and the strict rules
 * (body-guard.ts). A call refused on the way is answered here (early-answer.ts). Every answer is
 * watched until it has left (answer-stall.ts), and a throw anywhere in a request's path fails that
 * request only, never the process.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { DescMessage } from "@bufbuild/protobuf";
import {
  type ConnectError,
  type ConnectRouter,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  type Admission,
  type Admit,
  admittedCaller,
  admittedOf,
  rememberAdmitted,
  tokenHeaders,
} from "./admission.js";
import { dropStalledAnswer } from "./answer-stall.js";
import { peerAddress } from "./authn.js";
import type { BodyBudget } from "./body-budget.js";
import { type BodyLimits, guardBody, refusalOf, refusedInput, refuseGuarded } from "./body-guard.js";
import { CallStarts } from "./call-starts.js";
import type { CallsInFlight } from "./calls-in-flight.js";
import { ConnectionCaps } from "./connection-caps.js";
import { applyCors } from "./cors.js";
import { answerEarly, answerFailure } from "./early-answer.js";
import { type HostRule, refuseForeignHost } from "./host-check.js";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { refuseUnparsableTarget } from "./request-target.js";
import { ERROR_CODE_HEADER } from "./rpc-errors.js";
import { StallWatch } from "./stall-watch.js";
import {
  DEFAULT_STREAM_LIMITS,
  http2Settings,
  resetOversizedHeaders,
  type StreamLimits,
} from "./stream-limits.js";

type Request = NodeRequest;
type Response = NodeResponse;

export interface ServerOptions {
  readonly host: string;
  /** 0: any free port (the listening one is in `address`). */
  readonly port: number;
  readonly routes: (router: ConnectRouter) => void;
  readonly interceptors?: Interceptor[];
  /** Plain `GET` routes beside the RPCs, by path (`/healthz` is built in). */
  readonly getRoutes?: Readonly<
    Record<string, (request: Request, response: Response) => Promise<void> | void>
  >;
  /** Largest request body a call may send, in bytes (the payload limit plus framing). */
  readonly maxRequestBytes: number;
  /** Decides from an RPC's headers, before its body is read, whether it may go on; all may when absent. */
  readonly admit?: Admit | undefined;
  /** Told of each call refused before Connect saw it (the interceptors never do), e.g. for metrics. */
  readonly onEarlyRefusal?: ((path: string, error: ConnectError) => void) | undefined;
  /** Request-body bytes held at once, per connection, per user and in all; unbounded when absent. */
  readonly bodyBudget?: BodyBudget | undefined;
  /**
   * The bodies of calls to open services (admitted with no token): their own small size limit and
   * budget, so a caller without a token holds nothing of the room callers with one share.
   */
  readonly openBody?: { readonly maxBytes: number; readonly budget: BodyBudget } | undefined;
  /** Calls each admitted user may have in flight; unbounded when absent. */
  readonly callsInFlight?: CallsInFlight | undefined;
  /** Paths of long calls (Watch, Wait) `callsInFlight` does not count: they have their own cap. */
  readonly longCalls?: ReadonlySet<string> | undefined;
  /** Connections open at once from one non-loopback address; unbounded when absent. */
  readonly maxConnectionsPerAddress?: number | undefined;
  /** Told of each request whose serving threw (it was failed alone), e.g. to log it. */
  readonly onRequestError?: ((path: string, error: unknown) => void) | undefined;
  /** Streams per HTTP/2 connection and header list size; the defaults are the daemon's. */
  readonly streamLimits?: Partial<StreamLimits> | undefined;
  /** PEM certificate and key: the port speaks TLS 1.2+ only. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /** Browser origins allowed by CORS, matched exactly. */
  readonly allowedOrigins?: ReadonlySet<string>;
  /** The host names requests may be addressed to (DNS rebinding); undefined: any. */
  readonly hostRule?: HostRule | undefined;
  /** Connection time limits; the defaults are the daemon's, tests shorten them. */
  readonly timeouts?: Partial<ServerTimeouts>;
}

/** How long a client may take, so a slow or silent one cannot hold connections open. */
export interface ServerTimeouts {
  /** From connect to the first bytes (cleartext: they pick HTTP/1.1 or HTTP/2). */
  readonly firstBytesMs: number;
  /** From the first bytes to the end of an HTTP/1.1 request's headers (slowloris). */
  readonly headersMs: number;
  /** From the start to the end of an HTTP/1.1 request, body included. */
  readonly requestMs: number;
  /** An HTTP/1.1 keep-alive connection with no request in flight. */
  readonly keepAliveMs: number;
  /** An HTTP/2 session (or, with TLS, any connection) with nothing sent either way. */
  readonly idleMs: number;
  /** A request body with no byte received for this long is dropped (its budget freed). */
  readonly bodyStallMs: number;
  /** An answer whose unsent bytes do not go down for this long is reset (its memory freed). */
  readonly answerStallMs: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = {
  firstBytesMs: 10_000,
  headersMs: 10_000,
  requestMs: 300_000,
  keepAliveMs: 5_000,
  idleMs: 120_000,
  bodyStallMs: 10_000,
  answerStallMs: 30_000,
};

export interface RunningServer {
  /** Where it listens, e.g. `http://127.0.0.1:50051`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0");
/**
 * What one HTTP/2 session may hold in nghttp2 (header tables, frames queued to send), in MB; past
 * it new streams are refused (ENHANCE_YOUR_CALM). Node's default, set so it cannot drift.
 */
const MAX_SESSION_MEMORY_MB = 10;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const getRoutes: NonNullable<ServerOptions["getRoutes"]> = { "/healthz": healthz, ...options.getRoutes };
  const allowedOrigins = options.allowedOrigins ?? new Set<string>();
  /** Each RPC's path and request message, for the body guard. */
  const inputs = new Map<string, DescMessage>();
  const rpc = connectNodeAdapter({
    routes: (router) => {
      options.routes(router);
      for (const handler of router.handlers) inputs.set(handler.requestPath, handler.method.input);
    },
    readMaxBytes: options.maxRequestBytes,
    // Compressed requests are refused: a small body could unpack into a huge one, and JSON in it
    // would pass the strict-JSON guard unread.
    acceptCompression: [],
    // A field the schema does not know is an error, not silently dropped.
    jsonOptions: { ignoreUnknownFields: false },
    interceptors: [...(options.interceptors ?? []), refuseGuarded],
    contextValues: (request) =>
      createContextValues()
        // The socket's own address: a client cannot claim another by a header.
        .set(peerAddress, request.socket?.remoteAddress ?? "unknown")
        .set(refusedInput, refusalOf(request))
        .set(admittedCaller, admittedOf(request)),
    fallback: (request, response) => {
      const path = request.url?.split("?")[0] ?? "";
      const route = request.method === "GET" && Object.hasOwn(getRoutes, path) ? getRoutes[path] : undefined;
      if (route !== undefined) {
        Promise.resolve(route(request, response)).catch(() => {
          if (!response.headersSent) response.writeHead(500);
          response.end();
        });
        return;
      }
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      response.end("not found\n");
    },
  });
  const streamLimits = { ...DEFAULT_STREAM_LIMITS, ...options.streamLimits };
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const bodyStalls = new StallWatch(timeouts.bodyStallMs);
  const answerStalls = new StallWatch(timeouts.answerStallMs);
  const bodyLimits: BodyLimits = {
    maxBytes: options.maxRequestBytes,
    budget: options.bodyBudget,
    stalls: bodyStalls,
  };
  const openBodyLimits: BodyLimits =
    options.openBody === undefined ? bodyLimits : { ...options.openBody, stalls: bodyStalls };
  const longCalls = options.longCalls ?? new Set<string>();
  /** An RPC's admission from its headers alone: why it is refused, or whom it admits. */
  const admission = (request: Request, path: string): Admission | { readonly refusal: unknown } => {
    if (options.admit === undefined || !inputs.has(path)) return {};
    const address = request.socket?.remoteAddress ?? "unknown";
    try {
      return options.admit({ path, headers: tokenHeaders(request.headers), address });
    } catch (error) {
      // Answered as an internal error, with nothing from inside.
      return { refusal: error };
    }
  };
  /** Answers a call refused before its body was read (through): Connect never sees it. */
  const refuse = (request: Request, response: Response, refusal: unknown) => {
    const error = answerEarly(request, response, refusal);
    options.onEarlyRefusal?.(request.url?.split("?")[0] ?? "", error);
  };
  /** Fails one request whose serving threw: it alone, never the process. */
  const fail = (request: Request, response: Response, error: unknown) => {
    answerFailure(request, response);
    try {
      options.onRequestError?.(request.url?.split("?")[0] ?? "", error);
    } catch {
      // Telling of it must not fail anything more.
    }
  };
  const serve = (request: Request, response: Response) => {
    dropStalledAnswer(answerStalls, request, response);
    if (refuseUnparsableTarget(request, response)) return;
    if (refuseForeignHost(options.hostRule, request, response)) return;
    if (applyCors(allowedOrigins, request, response)) return;
    labelDecodeErrors(response);
    const path = request.url?.split("?")[0] ?? "";
    const admitted = admission(request, path);
    if (admitted.refusal !== undefined) {
      refuse(request, response, admitted.refusal);
      return;
    }
    const caller = "caller" in admitted ? admitted.caller : undefined;
    // Its handler takes this caller rather than authenticate the same headers again.
    rememberAdmitted(request, caller);
    if (caller !== undefined && options.callsInFlight !== undefined && !longCalls.has(path)) {
      const leave = options.callsInFlight.enter(caller.user);
      if (typeof leave !== "function") {
        refuse(request, response, leave);
        return;
      }
      // Not before the answer has left: until then the call holds its answer's memory.
      response.once("close", leave);
    }
    const limits = "open" in admitted && admitted.open === true ? openBodyLimits : bodyLimits;
    guardBody(request, response, limits, (at) => inputs.get(at), caller?.user).then(
      (stopped) => {
        try {
          if (stopped === undefined) rpc(request, response);
          else refuse(request, response, stopped);
        } catch (error) {
          fail(request, response, error);
        }
      },
      // The body could not be read (the client went away): nothing to answer.
      () => response.destroy(),
    );
  };
  const starts = new CallStarts();
  const handler = (request: Request, response: Response) => {
    try {
      if (resetOversizedHeaders(request, streamLimits.maxHeaderBytes)) return;
      starts.start(request, () => {
        try {
          serve(request, response);
        } catch (error) {
          fail(request, response, error);
        }
      });
    } catch (error) {
      fail(request, response, error);
    }
  };
  const caps =
    options.maxConnectionsPerAddress === undefined
      ? undefined
      : new ConnectionCaps(options.maxConnectionsPerAddress);
  if (options.tls !== undefined) return listenTls(options, timeouts, streamLimits, handler, caps);
  const http1 = http.createServer(
    {
      requestTimeout: timeouts.requestMs,
      headersTimeout: timeouts.headersMs,
      // Node checks those two only this often (30 s by default), which would stretch them.
      connectionsCheckingInterval: Math.min(1_000, timeouts.headersMs),
      maxHeaderSize: streamLimits.maxHeaderBytes,
    },
    handler,
  );
  http1.keepAliveTimeout = timeouts.keepAliveMs;
  // This server never listens itself (the front one hands it its connections), and Node starts
  // the timer that enforces headersTimeout and requestTimeout on 'listening': without this, a
  // client that drips its headers would hold its connection for ever.
  http1.emit("listening");
  const h2 = http2.createServer(
    { maxSessionMemory: MAX_SESSION_MEMORY_MB, settings: http2Settings(streamLimits) },
    handler,
  );
  // An idle HTTP/2 session is destroyed after a while, as an idle HTTP/1.1 connection is closed:
  // with no 'timeout' listener Node destroys it (a listener, even an empty one, would keep it).
  h2.setTimeout(timeouts.idleMs);
  const sockets = new Set<net.Socket>();

  const front = net.createServer((socket) => {
    if (caps !== undefined && !caps.admit(socket)) return;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // Until a server takes it (and listens for its errors), a reset must not become an
    // unhandled 'error' event, which would end the process.
    const onError = () => socket.destroy();
    socket.on("error", onError);
    socket.setTimeout(timeouts.firstBytesMs, () => socket.destroy());
    socket.once("readable", () => {
      try {
        const first: Buffer | null = socket.read(HTTP2_PREFACE.length) ?? socket.read();
        socket.setTimeout(0);
        if (first === null) return;
        socket.unshift(first);
        const isHttp2 = first.subarray(0, 3).equals(HTTP2_PREFACE.subarray(0, 3));
        socket.off("error", onError);
        (isHttp2 ? h2 : http1).emit("connection", socket);
      } catch {
        socket.destroy();
      }
    });
  });
  // close(), not only closeIdleConnections(): it also stops the timer started above.
  return listening(front, options, "http", sockets, () => http1.close());
}

/** TLS 1.2+: HTTP/2 or HTTP/1.1 as the client's ALPN asks, on one Node server. */
async function listenTls(
  options: ServerOptions,
  timeouts: ServerTimeouts,
  streamLimits: StreamLimits,
  handler: (request: Request, response: Response) => void,
  caps: ConnectionCaps | undefined,
): Promise<RunningServer> {
  const server = http2.createSecureServer(
    {
      cert: options.tls!.cert,
      key: options.tls!.key,
      minVersion: "TLSv1.2",
      // A client that opens a connection and never completes its handshake (120 s by default).
      handshakeTimeout: timeouts.firstBytesMs,
      allowHTTP1: true,
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      settings: http2Settings(streamLimits),
    },
    handler,
  );
  server.setTimeout(timeouts.idleMs);
  // Its HTTP/1.1 side enforces these as http.Server does; Node's own defaults are 60 s and 300 s,
  // checked every 30 s. Plain properties, read when it starts listening.
  Object.assign(server, {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    connectionsCheckingInterval: Math.min(1_000, timeouts.headersMs),
    maxHeaderSize: streamLimits.maxHeaderBytes,
  });
  // Counted on the raw connection, before its TLS handshake costs anything.
  if (caps !== undefined) server.on("connection", (socket: net.Socket) => caps.admit(socket));
  const sockets = new Set<net.Socket>();
  server.on("secureConnection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return listening(server, options, "https", sockets, () => undefined);
}

async function listening(
  server: net.Server,
  options: ServerOptions,
  scheme: "http" | "https",
  sockets: Set<net.Socket>,
  closeIdle: () => void,
): Promise<RunningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `${scheme}://${host}:${address.port}`,
    port: address.port,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        closeIdle();
        for (const socket of sockets) socket.end();
        setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, 2_000).unref();
      });
    },
  };
}

/**
 * Connect answers a body it cannot decode (a field of the wrong type, an unknown field, an int out
 * of range) with HTTP 400 before any Ferry code runs: give those the Ferry code too, so every
 * refusal of bad input carries `ferry-error-code`. (gRPC answers in trailers; they keep the status.)
 */
function labelDecodeErrors(response: Response): void {
  const writeHead = response.writeHead.bind(response) as (...args: unknown[]) => Response;
  response.writeHead = ((status: number, ...rest: unknown[]) => {
    if (status === 400 && !response.hasHeader(ERROR_CODE_HEADER)) {
      const given = rest.find((arg) => typeof arg === "object" && arg !== null) as
        | Record<string, unknown>
        | undefined;
      if (given?.[ERROR_CODE_HEADER] === undefined)
        response.setHeader(ERROR_CODE_HEADER, "FERRY_INVALID_ARGUMENT");
    }
    return writeHead(status, ...rest);
  }) as typeof response.writeHead;
}

function healthz(_request: Request, response: Response): void {
  response.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
  response.end("ok\n");
}
