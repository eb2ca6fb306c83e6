/**
 * `GET /metrics` in Prometheus's text format (prom-client): the process's own figures, every RPC
 * by service, method and status with its duration, and the store's jobs by queue and state, read
 * when scraped. With authentication on, a scrape needs a token (any role), from loopback
 * too: every local process shares that address, and a browser page can reach it by DNS rebinding.
 * Queue names and counts say something about the business behind them, so only
 * `server.metrics_public = true` opens them to anyone.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Ferry } from "../api/ferry.js";
import type { Caller } from "./authn.js";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { ERROR_CODE_HEADER, toConnectError } from "./rpc-errors.js";

type Request = NodeRequest;
type Response = NodeResponse;

export interface DaemonMetrics {
  readonly registry: Registry;
  /** Counts and times every call the daemon answers. */
  readonly interceptor: Interceptor;
  /** Counts a call the server refused before Connect saw it (no good token, no room for its body). */
  readonly countEarlyRefusal: (path: string, error: ConnectError) => void;
  readonly authFailures: Counter;
}

export function daemonMetrics(ferry: Ferry): DaemonMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "ferry_" });
  const requests = new Counter({
    name: "ferry_rpc_requests_total",
    help: "RPCs answered, by service, method and status",
    labelNames: ["service", "method", "code"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "ferry_rpc_duration_seconds",
    help: "Time to answer an RPC (a stream: to its first answer)",
    labelNames: ["service", "method"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30],
    registers: [registry],
  });
  const authFailures = new Counter({
    name: "ferry_auth_failures_total",
    help: "Calls refused for a missing, bad or revoked token, or a blocked address",
    registers: [registry],
  });
  new Gauge({
    name: "ferry_jobs",
    help: "Stored jobs by queue and state",
    labelNames: ["queue", "state"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const stats = await ferry.stats();
      for (const [queue, states] of Object.entries(stats.byQueue)) {
        for (const [state, count] of Object.entries(states)) this.set({ queue, state }, count ?? 0);
      }
    },
  });

  const interceptor: Interceptor = (next) => async (request) => {
    const labels = { service: request.service.typeName, method: request.method.name };
    const stop = duration.startTimer(labels);
    try {
      const response = await next(request);
      requests.inc({ ...labels, code: "ok" });
      return response;
    } catch (error) {
      const code = ConnectError.from(error).code;
      requests.inc({ ...labels, code: Code[code] ?? String(code) });
      if (code === Code.Unauthenticated) authFailures.inc();
      throw error;
    } finally {
      stop();
    }
  };
  const countEarlyRefusal = (path: string, error: ConnectError) => {
    // An RPC's path (the server refuses early only on those): `/service/method`.
    const [, service = "", method = ""] = path.split("/");
    requests.inc({ service, method, code: Code[error.code] ?? String(error.code) });
    if (error.code === Code.Unauthenticated) authFailures.inc();
  };
  return { registry, interceptor, countEarlyRefusal, authFailures };
}

/**
 * Answers `GET /metrics`. `authorize` names the caller from its token (throws when there is no
 * good one); undefined means anyone may read them (authentication off, or `metrics_public`).
 */
export async function serveMetrics(
  metrics: DaemonMetrics,
  authorize: ((headers: Headers, address: string) => Caller) | undefined,
  request: Request,
  response: Response,
): Promise<void> {
  if (authorize !== undefined) {
    try {
      // Any role: the figures are counts by queue and state, never a job's data.
      authorize(headersOf(request), request.socket?.remoteAddress ?? "unknown");
    } catch (error) {
      // The refusal alone: no figure is collected before the caller is known.
      const refused = toConnectError(error);
      response.writeHead(codeToHttpStatus(refused.code), {
        "content-type": "text/plain; charset=utf-8",
        [ERROR_CODE_HEADER]: String(refused.metadata.get(ERROR_CODE_HEADER) ?? "FERRY_INTERNAL"),
        ...(refused.code === Code.Unauthenticated ? { "www-authenticate": "Bearer" } : {}),
      });
      response.end(`${refused.rawMessage}\n`);
      return;
    }
  }
  const text = await metrics.registry.metrics();
  response.writeHead(200, { "content-type": metrics.registry.contentType });
  response.end(text);
}

function headersOf(request: Request): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}
