import { Command } from "commander";
import { loadConfig, redactUrl } from "../daemon/config.js";
import { daemonLogger } from "../daemon/log.js";
import { startWorkers } from "../daemon/worker-setup.js";
import { addConfigFlags, type ConfigFlags, configLayer, integerFlag } from "./config-flags.js";
import { trapShutdownSignals } from "./shutdown-signals.js";

interface WorkerFlags extends ConfigFlags {
  queues?: string;
  concurrency?: string;
}

/** How long running jobs get to finish after SIGTERM or SIGINT. */
const SHUTDOWN_GRACE = "30s";

/**
 * `ferry worker`: workers without the API, set up as `ferry daemon` sets up its own (the same
 * config file, environment and handlers, plugins included), until SIGINT/SIGTERM.
 */
export function workerCommand(): Command {
  return addConfigFlags(
    new Command("worker").description("run workers (no API) on the built-in and plugin handlers"),
  )
    .option("--queues <list>", "comma-separated queues ([workers] queues)")
    .option("--concurrency <n>", "jobs at once ([workers] concurrency)")
    .action(async (flags: WorkerFlags) => {
      const config = loadConfig({ file: flags.config, env: process.env, overrides: overridesOf(flags) });
      const log = daemonLogger();
      // Only the CLI traps signals: a library must not decide how its host shuts down.
      const signals = trapShutdownSignals((signal) =>
        log.info(
          { signal, grace: SHUTDOWN_GRACE },
          `${signal}: finishing running jobs; they get ${SHUTDOWN_GRACE}, again to force`,
        ),
      );
      const { worker, close } = await startWorkers(config, log);
      signals.ready(async () => {
        await close(SHUTDOWN_GRACE);
        log.info("closed");
      });
      log.info(
        {
          worker: worker.name,
          store: redactUrl(config.store.url),
          queues: worker.queues,
          concurrency: worker.concurrency,
        },
        `ferry worker ${worker.name} running on ${redactUrl(config.store.url)}, queues ` +
          `${worker.queues.join(",")}, concurrency ${worker.concurrency}`,
      );
    });
}

function overridesOf(flags: WorkerFlags): Record<string, Record<string, unknown>> {
  const workers: Record<string, unknown> = {};
  if (flags.queues !== undefined) workers.queues = flags.queues.split(",").map((q) => q.trim());
  if (flags.concurrency !== undefined) workers.concurrency = integerFlag("--concurrency", flags.concurrency);
  return { ...configLayer(flags), ...(Object.keys(workers).length === 0 ? {} : { workers }) };
}
