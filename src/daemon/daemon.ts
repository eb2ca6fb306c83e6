/**
 * A daemon assembled from its config: the store, workers on the built-in and plugin handlers, access
 * control, and the one-port server with JobService, AdminService, `/healthz` and `/metrics`.
 * `ferry daemon` (src/cli/daemon.ts) adds flags, refusals and signals around it; benchmarks and
 * tests may start one in-process.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Ferry } from "../api/ferry.js";
import { AccessControl } from "../auth/access-control.js";
import { FailedAuthLimiter } from "../auth/failed-auth-limiter.js";
import { ensureFirstAdmin, FIRST_ADMIN } from "../auth/first-admin.js";
import { parseDuration } from "../core/duration.js";
import { invalidArgument } from "../core/errors.js";
import { AdminService } from "../gen/ferry/v1/admin_pb.js";
import { JobService } from "../gen/ferry/v1/jobs_pb.js";
import { ScheduleService } from "../gen/ferry/v1/schedules_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { BUILTIN_HANDLERS } from "../handlers/builtin.js";
import { sqlExecHandler } from "../handlers/sql-exec.js";
import { type LoadedPlugins, loadPlugins } from "../plugins/load.js";
import type { Handler } from "../worker/handler.js";
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
  // What start-up opened, closed again (last first) when a later step fails: a port in use must
  // not leave workers running on the store.
  const opened: (() => unknown)[] = [];
  try {
    return await assemble(config, log, tls, opened);
  } catch (error) {
    for (const close of opened.reverse())
      await Promise.resolve()
        .then(close)
        .catch(() => undefined);
    throw error;
  }
}

async function assemble(
  config: DaemonConfig,
  log: Logger,
  tls: ReturnType<typeof readTls>,
  opened: (() => unknown)[],
): Promise<RunningDaemon> {
  const plugins = await openPlugins(config, log);
  opened.push(() => plugins.close());
  const ferry = await Ferry.open({
    store: config.store.url,
    maxPayloadBytes: config.limits.max_payload_bytes,
  });
  opened.push(() => ferry.close({ grace: 0 }));
  const worker = ferry.worker({
    queues: config.workers.queues,
    concurrency: Math.min(config.workers.concurrency, config.workers.max_running),
    defaultTimeout: config.workers.default_timeout,
    errorMaxBytes: config.limits.error_max_bytes,
    handlers: { ...plugins.handlers, ...BUILTIN_HANDLERS, ...sqlHandlers(config) },
  });
  worker.on("error", ({ error, during }) =>
    log.error({ during, error: String(error) }, `worker ${during} failed`),
  );
  await worker.start();

  const access = config.server.auth_enabled ? await openAccess(ferry, config, log) : undefined;
  if (access !== undefined) opened.push(() => access.close());
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
  opened.push(unsubscribe);
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
      await ferry.close({ grace });
      await plugins.close();
    },
  };
}

/** The plugins of `[plugins] dirs`, or none when `[plugins] enabled` is false (`--no-plugins`). */
async function openPlugins(config: DaemonConfig, log: Logger): Promise<LoadedPlugins> {
  if (!config.plugins.enabled) return { handlers: {}, list: () => [], close: async () => undefined };
  return loadPlugins(
    {
      dirs: config.plugins.dirs,
      isolation: config.plugins.isolation,
      builtinHandlers: [...Object.keys(BUILTIN_HANDLERS), "sql.exec"],
    },
    log,
  );
}

/** `sql.exec` when `[sql] url` names a database: parameterised SQL in its own transaction. */
function sqlHandlers(config: DaemonConfig): Record<string, Handler<never, unknown>> {
  if (config.sql.url === "") return {};
  const handler = sqlExecHandler({ url: config.sql.url, statementTimeout: config.sql.statement_timeout });
  return { "sql.exec": handler as Handler<never, unknown> };
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
