/**
 * A daemon's workers from its config: the handlers they serve (the built-ins, `sql.exec` when
 * `[sql] url` is set, the plugins of `[plugins] dirs`) and their `[workers]` and `[limits]`
 * settings. `ferry daemon` and `ferry worker` both start theirs here, so every process of one
 * deployment runs the same handlers the same way.
 */
import { Ferry } from "../api/ferry.js";
import { AccessControl } from "../auth/access-control.js";
import type { Duration } from "../core/duration.js";
import { undoOnFailure } from "../core/undo-on-failure.js";
import { BUILTIN_HANDLERS } from "../handlers/builtin.js";
import { sqlExecHandler } from "../handlers/sql-exec.js";
import { type LoadedPlugins, loadPlugins } from "../plugins/load.js";
import { resolvePluginUser } from "../plugins/plugin-user.js";
import { sweepStaleResolveRoots } from "../plugins/resolve-root.js";
import type { Handler } from "../worker/handler.js";
import type { Worker, WorkerOptions } from "../worker/worker.js";
import type { DaemonConfig } from "./config-schema.js";
import { firingGate } from "./launch-rights.js";
import type { Logger } from "./log.js";
import { checkSqlRoleAtStart } from "./sql-role-check.js";

export interface StartedWorkers {
  readonly ferry: Ferry;
  readonly worker: Worker;
  readonly plugins: LoadedPlugins;
  /**
   * The users and their rights, kept fresh from the store, when `[server] auth_enabled`: the
   * scheduler fires a schedule only while its owner may still launch its handler.
   */
  readonly access: AccessControl | undefined;
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
    for (const notice of ferry.notices) log.warn(notice);
    // The access document is the store's (every daemon on it shares it), not any caller's jobs.
    const access = config.server.auth_enabled ? await AccessControl.open(ferry.accessStore()) : undefined;
    if (access !== undefined) opened(() => access.close());
    const gate =
      access === undefined
        ? {}
        : { firingGate: firingGate(() => access.data, new Set(config.server.restricted_handlers)) };
    const worker = ferry.worker({ ...workerOptions(config, handlers), ...gate });
    worker.on("error", ({ error, during }) =>
      log.error({ during, error: String(error) }, `worker ${during} failed`),
    );
    await worker.start();
    return {
      ferry,
      worker,
      plugins,
      access,
      close: async (grace) => {
        access?.close();
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
  // Before the plugins start: a refused [sql] role leaves no plugin process behind.
  const sql = await sqlHandlers(config, log);
  const plugins = await openPlugins(config, log);
  return { plugins, handlers: { ...plugins.handlers, ...BUILTIN_HANDLERS, ...sql } };
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

/**
 * The plugins of `[plugins] dirs`, or none when `[plugins] enabled` is false (`--no-plugins`);
 * their processes run as `[plugins] user` (nobody, for a root daemon that names none).
 */
async function openPlugins(config: DaemonConfig, log: Logger): Promise<LoadedPlugins> {
  // A daemon killed outright left its plugins' private folders in the temp folder: whatever this
  // daemon's own plugins are, the next start is the one chance to remove them.
  const swept = sweepStaleResolveRoots();
  if (swept.length > 0)
    log.info({ folders: swept }, `removed ${swept.length} plugin folder(s) left by daemons that are gone`);
  if (!config.plugins.enabled) return { handlers: {}, list: () => [], close: async () => undefined };
  const { dirs, isolation, user, writable_dirs } = config.plugins;
  return loadPlugins(
    {
      dirs,
      isolation,
      builtinHandlers: [...Object.keys(BUILTIN_HANDLERS), "sql.exec"],
      // Inline plugins run in the daemon, as its user: there is no other to resolve.
      user: isolation === "process" ? resolvePluginUser(user) : undefined,
      writableDirs: writable_dirs,
      maxPayloadBytes: config.limits.max_payload_bytes,
    },
    log,
  );
}

/**
 * `sql.exec` when `[sql] url` names a database: parameterised SQL in its own transaction, once
 * the role it connects as is not too strong (or `[sql] allow_superuser` allows it).
 */
async function sqlHandlers(
  config: DaemonConfig,
  log: Logger,
): Promise<Record<string, Handler<never, unknown>>> {
  if (config.sql.url === "") return {};
  await checkSqlRoleAtStart(config.sql, log);
  const handler = sqlExecHandler({
    url: config.sql.url,
    statementTimeout: config.sql.statement_timeout,
    allowSuperuser: config.sql.allow_superuser,
  });
  return { "sql.exec": handler as Handler<never, unknown> };
}
