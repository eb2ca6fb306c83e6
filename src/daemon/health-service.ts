/**
 * `grpc.health.v1.Health`, the standard health protocol that load balancers, Kubernetes and
 * grpc-health-probe speak. Open to anonymous callers: it tells only whether the daemon serves.
 * Serving means the store answers; a daemon that is shutting down answers NOT_SERVING.
 */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Ferry } from "../api/ferry.js";
import { type Health, HealthCheckResponse_ServingStatus as Status } from "../gen/grpc/health/v1/health_pb.js";

/** A store that takes longer than this to answer is not serving. */
const STORE_CHECK_TIMEOUT_MS = 2_000;
/** Watch looks again this often, and sends only changes. */
const WATCH_INTERVAL_MS = 5_000;

export interface HealthOptions {
  /** Full names of the services this daemon serves ("" is always known: the whole server). */
  readonly services: readonly string[];
  /** True once the daemon is shutting down. */
  readonly closing: () => boolean;
}

export function healthService(ferry: Ferry, options: HealthOptions): ServiceImpl<typeof Health> {
  const known = new Set(["", ...options.services]);
  const status = async (service: string): Promise<Status> => {
    if (!known.has(service))
      throw new ConnectError(`unknown service ${JSON.stringify(service.slice(0, 200))}`, Code.NotFound);
    if (options.closing()) return Status.NOT_SERVING;
    return (await storeAnswers(ferry)) ? Status.SERVING : Status.NOT_SERVING;
  };
  return {
    check: async (request) => ({ status: await status(request.service) }),
    async *watch(request, context) {
      let last: Status | undefined;
      while (!context.signal.aborted) {
        const now = known.has(request.service) ? await status(request.service) : Status.SERVICE_UNKNOWN;
        if (now !== last) yield { status: now };
        last = now;
        await sleep(WATCH_INTERVAL_MS, context.signal);
      }
    },
  };
}

async function storeAnswers(ferry: Ferry): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), STORE_CHECK_TIMEOUT_MS);
  });
  try {
    const read = ferry.ping().then(
      () => true,
      () => false,
    );
    return await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
