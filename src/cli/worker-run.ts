/** `ferry worker` once its flags are read: workers set up as the daemon sets up its own. */
import { DEFAULT_STOP_GRACE } from "../core/defaults.js";
import { loadConfig, redactUrl } from "../daemon/config.js";
import { daemonLogger } from "../daemon/log.js";
import { startWorkers } from "../daemon/worker-setup.js";
import { trapShutdownSignals } from "./shutdown-signals.js";

/** How long running jobs get to finish after SIGTERM or SIGINT. */
const SHUTDOWN_GRACE = DEFAULT_STOP_GRACE;

export async function workerAction(
  configFile: string | undefined,
  overrides: Record<string, Record<string, unknown>>,
): Promise<void> {
  const config = loadConfig({ file: configFile, env: process.env, overrides });
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
}
