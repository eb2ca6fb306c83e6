/**
 * A daemon assembled from its config: the store, workers on the built-in and plugin handlers, access
 * control, and the one-port server with JobService, AdminService, `/healthz` and `/metrics`.
 * `ferry daemon` (src/cli/daemon.ts) adds flags, refusals and signals around it; benchmarks and
 * tests may start one in-process.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Ferry } from "../api/ferry.js";
import { AccessControl } from "../auth/access-control.js";
import { FailedAuthLimiter } from "../auth/failed-auth-limiter.js";
import { ensureFirstAdmin, FIRST_ADMIN } from "../auth/first-admin.js";
import { parseDuration } from "../core/duration.js";
import { invalidArgument } from "../core/errors.js";
import { undoOnFailure } from "../core/undo-on-failure.js";
import { AdminService } from "../gen/ferry/v1/admin_pb.js";
import { JobService } from "../gen/ferry/v1/jobs_pb.js";
import { ScheduleService } from "../gen/ferry/v1/schedules_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { adminService } from "./admin-service.js";
import { authenticateRequest, LOCAL_ADMIN, tokenAuthenticator } from "./authn.js";
import type { DaemonConfig } from "./config-schema.js";
import { dashboardRoutes } from "./dashboard.js";
import { healthService } from "./health-service.js";
import { jobService } from "./job-service.js";
import { type Logger, logInternalErrors } from "./log.js";
import { daemonMetrics, serveMetrics } from "./metrics.js";
import { LaunchQuotas } from "./quotas.js";
import { scheduleService } from "./schedule-service.js";
import { type RunningServer, startServer } from "./server.js";
import { startWorkers } from "./worker-setup.js";

/** Room for a call's framing and options around its largest payload. */
const REQUEST_OVERHEAD_BYTES = 64 * 1024;

export interface RunningDaemon {
  readonly server: RunningServer;
  readonly ferry: Ferry;
  /** Stops serving, lets running jobs finish within `grace`, closes the store. */
  close(grace: string): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, log: Logger): Promise<RunningDaemon> {
  const tls = readTls(config);
  return undoOnFailure((opened) => assemble(config, log, tls, opened));
}

async function assemble(
  config: DaemonConfig,
  log: Logger,
  tls: ReturnType<typeof readTls>,
  opened: (close: () => unknown) => void,
): Promise<RunningDaemon> {
  const workers = await startWorkers(config, log);
  opened(() => workers.close(0));
  const { ferry, plugins } = workers;

  const access = config.server.auth_enabled ? await openAccess(ferry, config, log) : undefined;
  if (access !== undefined) opened(() => access.close());
  const limiter = new FailedAuthLimiter();
  // Without authentication (loopback only) every call is the one local user, with every right.
  const callerOf = access === undefined ? () => LOCAL_ADMIN : tokenAuthenticator(access, limiter);
  let closing = false;
  const restrictedHandlers = new Set(config.server.restricted_handlers);
  const metrics = daemonMetrics(ferry);
  const quotas = new LaunchQuotas(
    { launchesPerMinute: config.limits.launches_per_minute, maxActive: config.limits.max_active_per_user },
    (owner, limit) => ferry.store.countActive(owner, limit),
  );
  const unsubscribe = ferry.store.subscribe((event) => {
    if (event.type === "changed") quotas.noteJobChanged();
  });
  opened(unsubscribe);
  const server = await startServer({
    host: config.server.bind_address,
    port: config.server.port,
    maxRequestBytes: config.limits.max_payload_bytes + REQUEST_OVERHEAD_BYTES,
    ...(tls === undefined ? {} : { tls }),
    allowedOrigins: new Set(config.server.allowed_origins),
    interceptors: [metrics.interceptor, logInternalErrors(log)],
    routes: (router) => {
      router.service(
        JobService,
        jobService(ferry, {
          callerOf,
          restrictedHandlers,
          quotas,
          cancelGraceMaxMs: parseDuration(config.limits.cancel_grace_max, "limits.cancel_grace_max"),
        }),
      );
      router.service(AdminService, adminService(ferry, { callerOf, access, plugins: () => plugins.list() }));
      router.service(ScheduleService, scheduleService(ferry, { callerOf, restrictedHandlers }));
      router.service(
        Health,
        healthService(ferry, {
          services: [JobService.typeName, ScheduleService.typeName, AdminService.typeName],
          closing: () => closing,
        }),
      );
    },
    getRoutes: {
      ...dashboardRoutes(),
      "/metrics": (request, response) =>
        serveMetrics(
          metrics,
          access === undefined
            ? undefined
            : (headers, address) => authenticateRequest(access, limiter, headers, address),
          request,
          response,
        ),
    },
  });
  return {
    server,
    ferry,
    close: async (grace) => {
      closing = true;
      await server.close();
      unsubscribe();
      access?.close();
      await workers.close(grace);
    },
  };
}

/** The users and tokens in the store; on the first start, an admin whose token goes to a file. */
async function openAccess(ferry: Ferry, config: DaemonConfig, log: Logger): Promise<AccessControl> {
  const access = await AccessControl.open(ferry.store);
  const file = resolve(config.server.admin_token_file);
  if ((await ensureFirstAdmin(access, file, Date.now())) !== undefined) {
    log.warn(
      { user: FIRST_ADMIN, file },
      `first start, no users yet: made user "${FIRST_ADMIN}" and wrote its token to ${file} (mode 0600)`,
    );
  }
  return access;
}

function readTls(config: DaemonConfig): { cert: Buffer; key: Buffer } | undefined {
  const { tls_cert: certFile, tls_key: keyFile } = config.server;
  if (certFile === "" && keyFile === "") return undefined;
  if (certFile === "" || keyFile === "")
    throw invalidArgument("TLS needs both server.tls_cert and server.tls_key");
  const read = (file: string, key: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw invalidArgument(
        `server.${key}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
  };
  return { cert: read(certFile, "tls_cert"), key: read(keyFile, "tls_key") };
}
