/**
 * One connection to a daemon: a Connect transport (gRPC over HTTP/2, or Connect JSON over
 * HTTP/1.1) carrying the token, and the three services' clients on it. connect-node opens its
 * HTTP/2 session on the first call and opens a new one on the next call after the old one is
 * lost, so a restarted daemon is reached again without a new `connect`.
 */
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { validateReadWriteMaxBytes } from "@connectrpc/connect/protocol";
import { createTransport as createConnectJsonTransport } from "@connectrpc/connect/protocol-connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService } from "../gen/ferry/v1/admin_pb.js";
import { JobService } from "../gen/ferry/v1/jobs_pb.js";
import { ScheduleService } from "../gen/ferry/v1/schedules_pb.js";
import { wholeRequestClient } from "./http1-client.js";
import type { ClientTlsOptions, ResolvedConnectOptions } from "./options.js";

export interface Connection {
  readonly server: string;
  readonly jobs: Client<typeof JobService>;
  readonly admin: Client<typeof AdminService>;
  readonly schedules: Client<typeof ScheduleService>;
}

export function openConnection(options: ResolvedConnectOptions): Connection {
  const transport = transportFor(options);
  return {
    server: options.server,
    jobs: createClient(JobService, transport),
    admin: createClient(AdminService, transport),
    schedules: createClient(ScheduleService, transport),
  };
}

export function transportFor(options: ResolvedConnectOptions): Transport {
  const { token } = options;
  const withToken: Interceptor = (next) => (request) => {
    if (token !== undefined) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const nodeOptions = tlsOptions(options.tls);
  if (options.transport === "grpc") {
    return createGrpcTransport({
      baseUrl: options.server,
      interceptors: [withToken],
      ...(nodeOptions === undefined ? {} : { nodeOptions }),
    });
  }
  return createConnectJsonTransport({
    baseUrl: options.server,
    // Each request sent whole (http1-client.ts), so a refusal's answer is read, not lost.
    httpClient: wholeRequestClient(nodeOptions),
    // JSON bodies, as curl sends them; the daemon holds them to its strict JSON rules.
    useBinaryFormat: false,
    interceptors: [withToken],
    acceptCompression: [],
    sendCompression: null,
    ...validateReadWriteMaxBytes(undefined, undefined, undefined),
  });
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
