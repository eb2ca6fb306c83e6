import { Command } from "commander";
import { invalidArgument } from "../core/errors.js";
import { loadConfig, printConfig, redactUrl } from "../daemon/config.js";
import type { DaemonConfig } from "../daemon/config-schema.js";
import { startDaemon } from "../daemon/daemon.js";
import { daemonLogger } from "../daemon/log.js";
import { isLoopback } from "../daemon/loopback.js";
import { addConfigFlags, type ConfigFlags, configLayer, integerFlag } from "./config-flags.js";
import { trapShutdownSignals } from "./shutdown-signals.js";

interface DaemonFlags extends ConfigFlags {
  bind?: string;
  port?: string;
  printConfig?: boolean;
  insecureNoTls?: boolean;
}

/** How long running jobs get to finish after SIGTERM or SIGINT. */
const SHUTDOWN_GRACE = "30s";

/**
 * `ferry daemon`: the store, workers on the built-in and plugin handlers, and the job API on one port.
 *
 * Safe by default: loopback only unless told otherwise; off loopback it needs authentication, and
 * TLS or an explicit `--insecure-no-tls`. It refuses to start otherwise, with the
 * reason, and exits 2.
 */
export function daemonCommand(): Command {
  return addConfigFlags(
    new Command("daemon").description(
      "serve the job API (gRPC, gRPC-Web, Connect JSON) on one port, with workers",
    ),
  )
    .option("--bind <address>", "address to listen on ([server] bind_address)")
    .option("--port <n>", "port to listen on, 0 for any free one ([server] port)")
    .option("--print-config", "print the effective config (secrets hidden) and exit")
    .option(
      "--insecure-no-tls",
      "allow a non-loopback address without TLS (tokens cross the network in clear)",
    )
    .action(async (flags: DaemonFlags) => {
      const config = loadConfig({ file: flags.config, env: process.env, overrides: overridesOf(flags) });
      if (flags.printConfig) {
        process.stdout.write(printConfig(config));
        return;
      }
      refuseUnsafe(config, flags.insecureNoTls === true);
      await runDaemon(config);
    });
}

function overridesOf(flags: DaemonFlags): Record<string, Record<string, unknown>> {
  const server: Record<string, unknown> = {};
  if (flags.bind !== undefined) server.bind_address = flags.bind;
  if (flags.port !== undefined) server.port = integerFlag("--port", flags.port);
  return { ...configLayer(flags), ...(Object.keys(server).length === 0 ? {} : { server }) };
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
