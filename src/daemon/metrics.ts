/**
 * `GET /metrics` in Prometheus's text format (prom-client): the process's own figures, every RPC
 * by service, method and status with its duration, and the store's jobs by queue and state, read
 * when scraped. A scrape from anywhere but loopback needs a token (admin or viewer), since queue
 * names and counts say something about the business behind them.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Ferry } from "../api/ferry.js";
import { FerryError } from "../core/errors.js";
import type { Caller } from "./authn.js";
import type { NodeRequest, NodeResponse } from "./http-types.js";
import { isLoopback } from "./loopback.js";
import { toConnectError } from "./rpc-errors.js";

type Request = NodeRequest;
type Response = NodeResponse;

export interface DaemonMetrics {
  readonly registry: Registry;
  /** Counts and times every call the daemon answers. */
  readonly interceptor: Interceptor;
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
  return { registry, interceptor, authFailures };
}

/**
 * Answers `GET /metrics`. `authorize` checks a caller from off loopback (throws when it may not
 * read them); from loopback nothing is asked.
 */
export async function serveMetrics(
  metrics: DaemonMetrics,
  authorize: ((headers: Headers, address: string) => Caller) | undefined,
  request: Request,
  response: Response,
): Promise<void> {
  const address = request.socket?.remoteAddress ?? "unknown";
  if (authorize !== undefined && !isLoopback(address)) {
    try {
      const caller = authorize(headersOf(request), address);
      if (caller.role === "submitter")
        throw new FerryError("FERRY_PERMISSION_DENIED", "your role may not read metrics");
    } catch (error) {
      const refused = toConnectError(error);
      response.writeHead(refused.code === Code.PermissionDenied ? 403 : 401, {
        "content-type": "text/plain; charset=utf-8",
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
