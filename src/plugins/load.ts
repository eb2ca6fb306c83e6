/**
 * The daemon's plugins: discovered and checked (discovery.ts), loaded inline or each in its own
 * process, with name collisions refused, one log line per plugin, and their handlers for the worker.
 */
import { basename, resolve } from "node:path";
import { DEFAULT_MAX_PAYLOAD_BYTES } from "../core/defaults.js";
import type { Logger } from "../core/logger.js";
import type { Handler } from "../worker/handler.js";
import { unreachable } from "./checks.js";
import { RESERVED_PLUGIN_NAMES } from "./define-plugin.js";
import { type Candidate, discoverPlugins } from "./discovery.js";
import { ferryReadable, HOST_SCRIPT } from "./ferry-files.js";
import { fileRules, type PluginUser } from "./file-rules.js";
import { MESSAGE_OVERHEAD_BYTES } from "./host-channel.js";
import type { HostWalls } from "./host-process.js";
import { importInlinePlugin } from "./inline-plugin.js";
import { daemonUser } from "./plugin-user.js";
import { type ProcessPlugin, startProcessPlugin } from "./process-plugin.js";
import { createResolveRoot } from "./resolve-root.js";
import type { PluginStatus } from "./status.js";

export interface PluginOptions {
  readonly dirs: readonly string[];
  readonly isolation: "process" | "inline";
  /** Handler names taken already (the built-ins): a plugin may not shadow them. */
  readonly builtinHandlers: readonly string[];
  /** Who plugin processes run as (plugin-user.ts); absent: the daemon's own user. */
  readonly user?: PluginUser | undefined;
  /** Folders plugin processes may write to; none by default. */
  readonly writableDirs?: readonly string[] | undefined;
  /**
   * `[limits] max_payload_bytes` (1 MiB by default): a payload or result on a plugin's message
   * channel may be this long as JSON, plus MESSAGE_OVERHEAD_BYTES; a longer one kills the plugin.
   */
  readonly maxPayloadBytes?: number | undefined;
}

export interface LoadedPlugins {
  /** Every loaded plugin's handlers, `NAME.HANDLER`. */
  readonly handlers: Readonly<Record<string, Handler<never, unknown>>>;
  /** Every plugin found, loaded or not, as it is now. */
  list(): PluginStatus[];
  /** Ends the plugin processes. */
  close(): Promise<void>;
}

type Opened =
  | {
      ok: true;
      manifest: { name: string; version: string; handlers: readonly string[] };
      accept: () => Live;
      refuse: () => void;
    }
  | { ok: false; reason: string };

/** One loaded plugin as ListPlugins shows it. */
type Live = {
  status: () => PluginStatus;
  handlers: Record<string, Handler<never, unknown>>;
  close: () => Promise<void>;
};

export async function loadPlugins(options: PluginOptions, log: Logger): Promise<LoadedPlugins> {
  const daemon = daemonUser();
  // Inline plugins are read by the daemon itself; plugin processes by their own user.
  const reader = options.isolation === "process" ? (options.user ?? daemon) : daemon;
  const found = await discoverPlugins(
    options.dirs,
    (dir) => log.info({ dir }, `no plugin dir at ${dir}: no plugins from there`),
    fileRules(daemon, reader),
  );
  const walls = await hostWalls(options, daemon, reader);
  if (options.isolation === "process" && reader.uid !== daemon.uid)
    log.info(
      { user: reader.name, uid: reader.uid },
      `plugin processes run as ${reader.name} (uid ${reader.uid})`,
    );
  else if (options.isolation === "process" && daemon.uid === 0)
    log.warn(
      { user: reader.name },
      "plugin processes run as root, as the daemon does: a plugin can read its environment and signal it",
    );
  const refused: PluginStatus[] = [];
  const refuse = (name: string, path: string, reason: string) => {
    log.error({ path, reason }, `refused plugin ${path}: ${reason}`);
    refused.push({
      name,
      version: "",
      path,
      handlers: [],
      state: "refused",
      reason,
      restarts: 0,
      isolation: options.isolation,
    });
  };
  const candidates: Candidate[] = [];
  for (const item of found) {
    if (item.kind === "refused") refuse(item.name, item.path, item.reason);
    else candidates.push(item);
  }
  // Started side by side (a process each takes a moment), judged one by one in name order.
  const opened = await Promise.all(candidates.map((c) => open(c, options.isolation, walls, log)));
  const live: Live[] = [];
  const taken = new Map<string, string>();
  candidates.forEach((candidate, i) => {
    const result = opened[i]!;
    const name = basename(candidate.folder);
    if (!result.ok) {
      refuse(name, candidate.folder, result.reason);
      return;
    }
    const { manifest } = result;
    const clash = collision(manifest.name, taken, options.builtinHandlers);
    if (clash !== undefined) {
      result.refuse();
      refuse(manifest.name, candidate.folder, clash);
      return;
    }
    taken.set(manifest.name, candidate.folder);
    log.info(
      {
        plugin: manifest.name,
        version: manifest.version,
        path: candidate.folder,
        isolation: options.isolation,
      },
      `Loading plugin: ${manifest.name} v${manifest.version} from ${candidate.folder}`,
    );
    live.push(result.accept());
  });
  const handlers: Record<string, Handler<never, unknown>> = {};
  for (const plugin of live) Object.assign(handlers, plugin.handlers);
  return {
    handlers,
    list: () => [...live.map((plugin) => plugin.status()), ...refused],
    close: async () => {
      await Promise.all(live.map((plugin) => plugin.close()));
    },
  };
}

function collision(
  name: string,
  taken: ReadonlyMap<string, string>,
  builtins: readonly string[],
): string | undefined {
  if (RESERVED_PLUGIN_NAMES.has(name) || builtins.some((handler) => handler.startsWith(`${name}.`)))
    return `the name ${name} is reserved for built-in handlers`;
  const other = taken.get(name);
  if (other !== undefined) return `the name ${name} is taken by the plugin at ${other}`;
  return undefined;
}

/**
 * The walls of each plugin's process (host-process.ts): it reads its own folder, Ferry's code and
 * the writable dirs, writes only those, and runs as `reader`. Or why no plugin process can start:
 * its user cannot read Ferry's host script.
 */
async function hostWalls(
  options: PluginOptions,
  daemon: PluginUser,
  reader: PluginUser,
): Promise<((folder: string) => HostWalls) | string> {
  const writable = (options.writableDirs ?? []).map((dir) => resolve(dir));
  const user = reader.uid === daemon.uid && reader.gid === daemon.gid ? undefined : reader;
  if (options.isolation === "process") {
    const reason = await unreachable(HOST_SCRIPT, reader);
    if (reason !== undefined) return `its process cannot start: ${reason} (Ferry's plugin host)`;
  }
  const ferry = ferryReadable();
  const maxMessageBytes = (options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES) + MESSAGE_OVERHEAD_BYTES;
  return (folder) => ({ readable: [folder, ...ferry, ...writable], writable, user, maxMessageBytes });
}

async function open(
  candidate: Candidate,
  isolation: "process" | "inline",
  walls: Awaited<ReturnType<typeof hostWalls>>,
  log: Logger,
): Promise<Opened> {
  const { folder, module } = candidate;
  try {
    if (isolation === "inline") {
      const plugin = await importInlinePlugin(folder, module);
      const { manifest } = plugin;
      let stopped = false;
      return {
        ok: true,
        manifest,
        refuse: () => undefined,
        accept: () => ({
          handlers: plugin.handlers,
          close: async () => {
            stopped = true;
          },
          status: () => ({
            name: manifest.name,
            version: manifest.version,
            path: folder,
            handlers: Object.keys(plugin.handlers),
            state: stopped ? "stopped" : "loaded",
            reason: "",
            restarts: 0,
            isolation,
          }),
        }),
      };
    }
    if (typeof walls === "string") return { ok: false, reason: walls };
    // Where its imports of `ferry` find this daemon's Ferry; kept while its process may restart.
    const root = createResolveRoot(folder);
    let started: Awaited<ReturnType<typeof startProcessPlugin>>;
    try {
      started = await startProcessPlugin(folder, module, { ...walls(folder), resolveRoot: root.path }, log);
    } catch (error) {
      root.remove();
      throw error;
    }
    return {
      ok: true,
      manifest: started.manifest,
      refuse: () => {
        started.refuse();
        root.remove();
      },
      accept: () => {
        const plugin: ProcessPlugin = started.start();
        const handlers = plugin.handlers();
        return {
          handlers,
          close: async () => {
            await plugin.close();
            root.remove();
          },
          status: () => ({
            name: plugin.manifest.name,
            version: plugin.manifest.version,
            path: folder,
            handlers: Object.keys(handlers),
            state: plugin.state,
            reason: plugin.reason,
            restarts: plugin.restarts,
            isolation,
          }),
        };
      },
    };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}
