/** `ferry daemon` once its flags are read: the config, the safety checks, then the daemon. */
import { DEFAULT_STOP_GRACE } from "../core/defaults.js";
import { invalidArgument } from "../core/errors.js";
import { loadConfig, printConfig, redactUrl } from "../daemon/config.js";
import type { DaemonConfig } from "../daemon/config-schema.js";
import { startDaemon } from "../daemon/daemon.js";
import { daemonLogger } from "../daemon/log.js";
import { isLoopback } from "../daemon/loopback.js";
import type { ConfigFlags } from "./config-flags.js";
import { trapShutdownSignals } from "./shutdown-signals.js";

/** The flags `ferry daemon` takes (daemon.ts declares them). */
export interface DaemonFlags extends ConfigFlags {
  bind?: string;
  port?: string;
  printConfig?: boolean;
  insecureNoTls?: boolean;
}

/** How long running jobs get to finish after SIGTERM or SIGINT. */
const SHUTDOWN_GRACE = DEFAULT_STOP_GRACE;

export async function daemonAction(
  flags: DaemonFlags,
  overrides: Record<string, Record<string, unknown>>,
): Promise<void> {
  const config = loadConfig({ file: flags.config, env: process.env, overrides });
  if (flags.printConfig) {
    process.stdout.write(printConfig(config));
    return;
  }
  refuseUnsafe(config, flags.insecureNoTls === true);
  await runDaemon(config);
}

function refuseUnsafe(config: DaemonConfig, insecureNoTls: boolean): void {
  const { bind_address: bind, auth_enabled: auth } = config.server;
  if (!isLoopback(bind) && !auth) {
    throw invalidArgument(
      `refusing to listen on ${bind} with auth_enabled = false: anyone who reaches it could run jobs`,
    );
  }
  const tls = config.server.tls_cert !== "" || config.server.tls_key !== "";
  if (!isLoopback(bind) && !tls && !insecureNoTls) {
    throw invalidArgument(
      `refusing to listen on ${bind} without TLS: tokens would cross the network in clear ` +
        "(set server.tls_cert and server.tls_key, or accept the risk with --insecure-no-tls)",
    );
  }
}

async function runDaemon(config: DaemonConfig): Promise<void> {
  const log = daemonLogger();
  const signals = trapShutdownSignals((signal) =>
    log.info(
      { signal, grace: SHUTDOWN_GRACE },
      `${signal}: closing; running jobs get ${SHUTDOWN_GRACE}, again to force`,
    ),
  );
  const daemon = await startDaemon(config, log);
  signals.ready(async () => {
    await daemon.close(SHUTDOWN_GRACE);
    log.info("closed");
  });
  const url = daemon.server.url;
  const tls = config.server.tls_cert !== "";
  log.info(
    {
      url,
      store: redactUrl(config.store.url),
      queues: config.workers.queues,
      auth: config.server.auth_enabled,
      tls,
    },
    `ferry daemon listening on ${url} (gRPC, gRPC-Web, Connect JSON; GET /healthz, /metrics)`,
  );
}
