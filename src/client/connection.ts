/**
 * One connection to a daemon: a Connect transport (gRPC over HTTP/2, or Connect JSON over
 * HTTP/1.1) carrying the token, and the three services' clients on it. connect-node opens its
 * HTTP/2 session on the first call and opens a new one on the next call after the old one is
 * lost, so a restarted daemon is reached again without a new `connect`.
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { validateReadWriteMaxBytes } from "@connectrpc/connect/protocol";
import { createTransport as createConnectJsonTransport } from "@connectrpc/connect/protocol-connect";
import type { AdminService } from "../gen/ferry/v1/admin_pb.js";
import { JobService } from "../gen/ferry/v1/jobs_pb.js";
import type { ScheduleService } from "../gen/ferry/v1/schedules_pb.js";
import { wholeRequestClient } from "./http1-client.js";
import type { ClientTlsOptions, ResolvedConnectOptions } from "./options.js";

export interface Connection {
  readonly server: string;
  readonly jobs: Client<typeof JobService>;
  readonly admin: Client<typeof AdminService>;
  readonly schedules: Client<typeof ScheduleService>;
}

export async function openConnection(options: ResolvedConnectOptions): Promise<Connection> {
  return connectionOn(options.server, await transportFor(options));
}

/**
 * The three services' clients on one transport. The AdminService and ScheduleService
 * descriptors load on their first call: building a descriptor is a good part of a short
 * process's start-up, and `ferry launch` needs the JobService's alone.
 */
export function connectionOn(server: string, transport: Transport): Connection {
  return {
    server,
    jobs: createClient(JobService, transport),
    admin: onFirstCall(async () => (await import("../gen/ferry/v1/admin_pb.js")).AdminService, transport),
    schedules: onFirstCall(
      async () => (await import("../gen/ferry/v1/schedules_pb.js")).ScheduleService,
      transport,
    ),
  };
}

/** A client of a service with unary methods only, whose descriptor is loaded on the first call. */
function onFirstCall<S extends DescService>(load: () => Promise<S>, transport: Transport): Client<S> {
  let client: Promise<Client<S>> | undefined;
  const method =
    (name: string) =>
    async (...args: unknown[]): Promise<unknown> => {
      client ??= load().then((service) => createClient(service, transport));
      const call = (await client)[name as keyof Client<S>] as
        | ((...a: unknown[]) => Promise<unknown>)
        | undefined;
      if (typeof call !== "function") throw new TypeError(`the service has no method ${name}`);
      return call(...args);
    };
  return new Proxy({} as Client<S>, {
    // Not `then`: the client is no promise, and `await` must not take it for one.
    get: (_target, name) => (typeof name === "string" && name !== "then" ? method(name) : undefined),
  });
}

export async function transportFor(options: ResolvedConnectOptions): Promise<Transport> {
  if (options.transport === "connect-json") return connectJsonTransport(options);
  // Loaded only for gRPC: connect-node (HTTP/2) is a good part of a short process's start-up,
  // and the CLI, which speaks Connect JSON, never needs it.
  const { createGrpcTransport } = await import("@connectrpc/connect-node");
  const nodeOptions = tlsOptions(options.tls);
  return createGrpcTransport({
    baseUrl: options.server,
    interceptors: [withToken(options.token)],
    ...(nodeOptions === undefined ? {} : { nodeOptions }),
  });
}

/** The Connect protocol with JSON bodies over HTTP/1.1: what curl speaks, and the CLI. */
export function connectJsonTransport(options: ResolvedConnectOptions): Transport {
  return createConnectJsonTransport({
    baseUrl: options.server,
    // Each request sent whole (http1-client.ts), so a refusal's answer is read, not lost.
    httpClient: wholeRequestClient(tlsOptions(options.tls)),
    // JSON bodies, as curl sends them; the daemon holds them to its strict JSON rules.
    useBinaryFormat: false,
    interceptors: [withToken(options.token)],
    acceptCompression: [],
    sendCompression: null,
    ...validateReadWriteMaxBytes(undefined, undefined, undefined),
  });
}

function withToken(token: string | undefined): Interceptor {
  return (next) => (request) => {
    if (token !== undefined) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

function tlsOptions(tls: ClientTlsOptions | undefined) {
  if (tls === undefined) return undefined;
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca as string | Buffer | (string | Buffer)[] }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
  };
}
