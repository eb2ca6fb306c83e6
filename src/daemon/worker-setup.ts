/**
 * A daemon's workers from its config: the handlers they serve (the built-ins, `sql.exec` when
 * `[sql] url` is set, the plugins of `[plugins] dirs`) and their `[workers]` and `[limits]`
 * settings. `ferry daemon` and `ferry worker` both start theirs here, so every process of one
 * deployment runs the same handlers the same way.
 */
import { Ferry } from "../api/ferry.js";
import type { Duration } from "../core/duration.js";
import { undoOnFailure } from "../core/undo-on-failure.js";
import { BUILTIN_HANDLERS } from "../handlers/builtin.js";
import { sqlExecHandler } from "../handlers/sql-exec.js";
import { type LoadedPlugins, loadPlugins } from "../plugins/load.js";
import type { Handler } from "../worker/handler.js";
import type { Worker, WorkerOptions } from "../worker/worker.js";
import type { DaemonConfig } from "./config-schema.js";
import type { Logger } from "./log.js";

export interface StartedWorkers {
  readonly ferry: Ferry;
  readonly worker: Worker;
  readonly plugins: LoadedPlugins;
  /** Lets running jobs finish within `grace`, closes the store, ends the plugin processes. */
  close(grace: Duration): Promise<void>;
}

/** Opens the store of `[store] url` and starts a worker on it with the configured handlers. */
export async function startWorkers(config: DaemonConfig, log: Logger): Promise<StartedWorkers> {
  return undoOnFailure(async (opened) => {
    const { handlers, plugins } = await openHandlers(config, log);
    opened(() => plugins.close());
    const ferry = await Ferry.open({
      store: config.store.url,
      maxPayloadBytes: config.limits.max_payload_bytes,
    });
    opened(() => ferry.close({ grace: 0 }));
    const worker = ferry.worker(workerOptions(config, handlers));
    worker.on("error", ({ error, during }) =>
      log.error({ during, error: String(error) }, `worker ${during} failed`),
    );
    await worker.start();
    return {
      ferry,
      worker,
      plugins,
      close: async (grace) => {
        await ferry.close({ grace });
        await plugins.close();
      },
    };
  });
}

export interface ConfiguredHandlers {
  readonly handlers: Readonly<Record<string, Handler<never, unknown>>>;
  /** Every plugin found (none with `[plugins] enabled = false`); close() ends their processes. */
  readonly plugins: LoadedPlugins;
}

export async function openHandlers(config: DaemonConfig, log: Logger): Promise<ConfiguredHandlers> {
  const plugins = await openPlugins(config, log);
  return { plugins, handlers: { ...plugins.handlers, ...BUILTIN_HANDLERS, ...sqlHandlers(config) } };
}

/** The worker options `[workers]` and `[limits]` set, with these handlers. */
export function workerOptions(config: DaemonConfig, handlers: ConfiguredHandlers["handlers"]): WorkerOptions {
  return {
    queues: config.workers.queues,
    concurrency: Math.min(config.workers.concurrency, config.workers.max_running),
    defaultTimeout: config.workers.default_timeout,
    errorMaxBytes: config.limits.error_max_bytes,
    handlers,
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
