import { isIP } from "node:net";
import { Command } from "commander";
import { Ferry } from "../api/ferry.js";
import { invalidArgument } from "../core/errors.js";
import { loadConfig, printConfig } from "../daemon/config.js";
import type { DaemonConfig } from "../daemon/config-schema.js";
import { jobService } from "../daemon/job-service.js";
import { startServer } from "../daemon/server.js";
import { JobService } from "../gen/ferry/v1/jobs_pb.js";
import { BUILTIN_HANDLERS } from "../handlers/builtin.js";

interface DaemonFlags {
  config?: string;
  store?: string;
  bind?: string;
  port?: string;
  plugins: boolean;
  printConfig?: boolean;
}

/** How long running jobs get to finish after SIGTERM or SIGINT. */
const SHUTDOWN_GRACE = "30s";
/** Room for a call's framing and options around its largest payload. */
const REQUEST_OVERHEAD_BYTES = 64 * 1024;

/**
 * `ferry daemon`: the store, workers on the built-in handlers, and the job API on one port.
 *
 * Slice 1 of issue 5: token authentication is not built yet, so the daemon starts only with
 * `auth_enabled = false`, and then only on a loopback address (anyone who can reach the port
 * could act as the one local user). It refuses to start otherwise, with the reason.
 */
export function daemonCommand(): Command {
  return new Command("daemon")
    .description("serve the job API (gRPC, gRPC-Web, Connect JSON) on one port, with workers")
    .option("--config <file>", "TOML config file (docs/config.md)")
    .option("--store <url>", "store URL ([store] url)")
    .option("--bind <address>", "address to listen on ([server] bind_address)")
    .option("--port <n>", "port to listen on, 0 for any free one ([server] port)")
    .option("--no-plugins", "load no plugins ([plugins] enabled = false)")
    .option("--print-config", "print the effective config (secrets hidden) and exit")
    .action(async (flags: DaemonFlags) => {
      const config = loadConfig({ file: flags.config, env: process.env, overrides: overridesOf(flags) });
      if (flags.printConfig) {
        process.stdout.write(printConfig(config));
        return;
      }
      refuseUnsafe(config);
      await runDaemon(config);
    });
}

function overridesOf(flags: DaemonFlags): Record<string, Record<string, unknown>> {
  const server: Record<string, unknown> = {};
  if (flags.bind !== undefined) server.bind_address = flags.bind;
  if (flags.port !== undefined) {
    const port = Number(flags.port);
    if (!Number.isInteger(port))
      throw invalidArgument(`--port must be a number, got ${JSON.stringify(flags.port)}`);
    server.port = port;
  }
  return {
    ...(flags.store === undefined ? {} : { store: { url: flags.store } }),
    ...(Object.keys(server).length === 0 ? {} : { server }),
    ...(flags.plugins ? {} : { plugins: { enabled: false } }),
  };
}

export function isLoopback(address: string): boolean {
  if (address === "localhost") return true;
  if (isIP(address) === 4) return address.startsWith("127.");
  return address === "::1";
}

function refuseUnsafe(config: DaemonConfig): void {
  const { bind_address: bind, auth_enabled: auth } = config.server;
  if (!isLoopback(bind) && !auth) {
    throw invalidArgument(
      `refusing to listen on ${bind} with auth_enabled = false: anyone who reaches it could run jobs`,
    );
  }
  if (auth) {
    throw invalidArgument(
      "token authentication is not built in this version (issue 5): run on loopback with " +
        "FERRY_SERVER__AUTH_ENABLED=false (or [server] auth_enabled = false)",
    );
  }
  if (config.server.tls_cert !== "" || config.server.tls_key !== "") {
    throw invalidArgument("TLS (tls_cert, tls_key) is not built in this version (issue 5)");
  }
}

async function runDaemon(config: DaemonConfig): Promise<void> {
  const ferry = await Ferry.open({ store: config.store.url });
  const worker = ferry.worker({
    queues: config.workers.queues,
    concurrency: Math.min(config.workers.concurrency, config.workers.max_running),
    defaultTimeout: config.workers.default_timeout,
    handlers: BUILTIN_HANDLERS,
  });
  worker.on("error", ({ error, during }) =>
    process.stderr.write(`ferry daemon: worker ${during}: ${String(error)}\n`),
  );
  await worker.start();
  // Without authentication (loopback only) every call is the one local user, with every right.
  const localUser = { user: "local", role: "admin" as const };
  const server = await startServer({
    host: config.server.bind_address,
    port: config.server.port,
    maxRequestBytes: config.limits.max_payload_bytes + REQUEST_OVERHEAD_BYTES,
    routes: (router) => router.service(JobService, jobService(ferry, { callerOf: () => localUser })),
  });
  process.stdout.write(
    `ferry daemon listening on ${server.url} (gRPC, gRPC-Web, Connect JSON; GET /healthz), ` +
      `store ${config.store.url.split("?")[0]}, queues ${config.workers.queues.join(",")}, auth off (loopback only)\n`,
  );
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stdout.write(
      `ferry daemon: ${signal}, closing (running jobs get ${SHUTDOWN_GRACE}; again to force)\n`,
    );
    await server.close();
    await ferry.close({ grace: SHUTDOWN_GRACE });
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}
