/**
 * A daemon assembled from its config: the store, workers on the built-in and plugin handlers, access
 * control, and the one-port server with JobService, AdminService, `/healthz` and `/metrics`.
 * `ferry daemon` (src/cli/daemon.ts) adds flags, refusals and signals around it; benchmarks and
 * tests may start one in-process.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Ferry } from "../api/ferry.js";
import type { AccessControl } from "../auth/access-control.js";
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
import { admittedOr } from "./admission.js";
import { authenticateRequest, LOCAL_ADMIN, tokenAuthenticator } from "./authn.js";
import type { DaemonConfig } from "./config-schema.js";
import { dashboardRoutes } from "./dashboard.js";
import { healthService } from "./health-service.js";
import { hostRule } from "./host-check.js";
import { jobService } from "./job-service.js";
import { firingGate } from "./launch-rights.js";
import { type Logger, logInternalErrors } from "./log.js";
import { daemonMetrics, serveMetrics } from "./metrics.js";
import { OpenWatches } from "./open-watches.js";
import { LaunchQuotas } from "./quotas.js";
import { scheduleService } from "./schedule-service.js";
import { type RunningServer, startServer } from "./server.js";
import { serverLimits } from "./server-limits.js";
import { type StartedWorkers, startWorkers } from "./worker-setup.js";

export interface RunningDaemon {
  readonly server: RunningServer;
  readonly ferry: Ferry;
  /** Stops serving, lets running jobs finish within `grace`, closes the store. */
  close(grace: string): Promise<void>;
}

/** What a daemon serves calls over: a Ferry, its plugins and access control, and how to close them. */
export type ServedWorkers = Pick<StartedWorkers, "ferry" | "plugins" | "access" | "close">;

export async function startDaemon(config: DaemonConfig, log: Logger): Promise<RunningDaemon> {
  // Before the store opens: a missing certificate leaves nothing to close.
  const tls = readTls(config);
  return undoOnFailure(async (opened) => {
    const workers = await startWorkers(config, log);
    opened(() => workers.close(0));
    return serve(config, log, workers, tls, opened);
  });
}

/**
 * The daemon's server (every service with its access checks and limits) over workers started
 * elsewhere, such as a test's own Ferry. Closing it closes them too; a start that fails leaves
 * them open, as they were given. `[store]`, `[workers]`, `[plugins]` and `[sql]` are the
 * workers' to apply, not read here.
 */
export async function serveDaemon(
  config: DaemonConfig,
  log: Logger,
  workers: ServedWorkers,
): Promise<RunningDaemon> {
  const tls = readTls(config);
  return undoOnFailure((opened) => serve(config, log, workers, tls, opened));
}

async function serve(
  config: DaemonConfig,
  log: Logger,
  workers: ServedWorkers,
  tls: ReturnType<typeof readTls>,
  opened: (close: () => unknown) => void,
): Promise<RunningDaemon> {
  // The workers' access document (their scheduler's gate reads it) serves the calls too.
  const { ferry, plugins, access } = workers;
  if (access !== undefined) await makeFirstAdmin(access, config, log);
  const limiter = new FailedAuthLimiter();
  // Without authentication (loopback only) every call is the one local user, with every right.
  const callerOf = access === undefined ? () => LOCAL_ADMIN : admittedOr(tokenAuthenticator(access, limiter));
  let closing = false;
  const restrictedHandlers = new Set(config.server.restricted_handlers);
  const metrics = daemonMetrics(ferry);
  const quotas = new LaunchQuotas(
    { launchesPerMinute: config.limits.launches_per_minute, maxActive: config.limits.max_active_per_user },
    (owner, limit) => ferry.countActive(owner, limit),
  );
  const unsubscribe = ferry.onChange(() => quotas.noteJobChanged());
  opened(unsubscribe);
  const server = await startServer({
    host: config.server.bind_address,
    port: config.server.port,
    ...serverLimits(
      config,
      access === undefined
        ? undefined
        : (headers, address) => authenticateRequest(access, limiter, headers, address),
    ),
    onEarlyRefusal: metrics.countEarlyRefusal,
    // Failed alone (answered as an internal error); the cause stays in the log.
    onRequestError: (path, error) =>
      log.error(
        { path, cause: error instanceof Error ? error.message : String(error) },
        "a request failed inside",
      ),
    ...(tls === undefined ? {} : { tls }),
    allowedOrigins: new Set(config.server.allowed_origins),
    hostRule: hostRule(config.server.auth_enabled, config.server.allowed_hosts),
    interceptors: [metrics.interceptor, logInternalErrors(log)],
    routes: (router) => {
      router.service(
        JobService,
        jobService(ferry, {
          callerOf,
          restrictedHandlers,
          quotas,
          openWatches: new OpenWatches(config.limits.max_watches_per_user),
          cancelGraceMaxMs: parseDuration(config.limits.cancel_grace_max, "limits.cancel_grace_max"),
        }),
      );
      router.service(AdminService, adminService(ferry, { callerOf, access, plugins: () => plugins.list() }));
      router.service(
        ScheduleService,
        scheduleService(ferry, {
          callerOf,
          restrictedHandlers,
          ...(access === undefined ? {} : { firingGate: firingGate(() => access.data, restrictedHandlers) }),
        }),
      );
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
          access === undefined || config.server.metrics_public
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

/** On the first start (no users in the store yet), an admin whose token goes to a file. */
async function makeFirstAdmin(access: AccessControl, config: DaemonConfig, log: Logger): Promise<void> {
  const file = resolve(config.server.admin_token_file);
  if ((await ensureFirstAdmin(access, file, Date.now())) !== undefined) {
    log.warn(
      { user: FIRST_ADMIN, file },
      `first start, no users yet: made user "${FIRST_ADMIN}" and wrote its token to ${file} (mode 0600)`,
    );
  }
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
