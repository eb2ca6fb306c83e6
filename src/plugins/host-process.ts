/**
 * Starting one plugin host (plugin-host.mjs) as a child process behind its walls (HostWalls): a
 * clean environment, a capped heap, Node's permission model, and another user when the daemon is
 * root; the plugin's folder as working directory, its output into the daemon's log (in bounded
 * memory, plugin-output.ts). The daemon talks to it over a plain pipe on the child's fd 3 with its
 * own framing (host-channel.ts), never Node's IPC channel, whose parser throws uncaught in the
 * daemon on bytes the plugin writes there. Answers once the host says what the plugin exports, or
 * fails with why it could not load.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { basename, join } from "node:path";
import type { Duplex } from "node:stream";
import type { Logger } from "../core/logger.js";
import { HOST_SCRIPT } from "./ferry-files.js";
import { HostChannel } from "./host-channel.js";
import { forwardOutput } from "./plugin-output.js";
/** The heap a plugin process may grow to: a leak ends it, not the machine. */
export const PLUGIN_HEAP_MB = 256;
/** How long a plugin's module may take to import. */
const LOAD_TIMEOUT_MS = 10_000;

/** What the host says once the plugin module is imported. */
export interface HostHello {
  readonly name: unknown;
  readonly version: unknown;
  readonly handlers: [string, boolean][];
}

/** What a plugin process may do beyond computing: read, write, and as whom. */
export interface HostWalls {
  /** Files and folders it may read (its own folder, Ferry's code); nothing else. */
  readonly readable: readonly string[];
  /** Folders it may write to (`[plugins] writable_dirs`); none by default. */
  readonly writable: readonly string[];
  /** The uid and gid it runs as; absent: the daemon's own. */
  readonly user?: { readonly uid: number; readonly gid: number } | undefined;
  /** The longest message either side may write on the channel (a result or payload, plus room). */
  readonly maxMessageBytes: number;
  /**
   * The private folder through which the plugin's module is imported, so that `ferry` resolves
   * to this daemon's Ferry (resolve-root.ts); absent: the module is imported where it lies.
   */
  readonly resolveRoot?: string | undefined;
}

export interface StartedHost {
  readonly child: ChildProcess;
  readonly channel: HostChannel;
  readonly hello: HostHello;
}

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exit code ${code}`;
}

/**
 * Node's flags for a plugin process. Without `--allow-child-process`, `--allow-worker` or
 * `--allow-addons` it can start no process, thread or native code, and it reads and writes only
 * where the walls say. (One path per flag: Node 20.20 no longer splits a list on commas.)
 */
export function hostExecArgv(walls: Pick<HostWalls, "readable" | "writable" | "resolveRoot">): string[] {
  return [
    `--max-old-space-size=${PLUGIN_HEAP_MB}`,
    "--experimental-permission",
    ...walls.readable.map((path) => `--allow-fs-read=${path}`),
    ...walls.writable.map((path) => `--allow-fs-write=${path}`),
    // Module paths keep the resolve root, whose node_modules holds `ferry` (resolve-root.ts).
    ...(walls.resolveRoot === undefined
      ? []
      : [`--allow-fs-read=${walls.resolveRoot}`, "--preserve-symlinks"]),
    // Once per start in the daemon's log would say nothing new.
    "--disable-warning=ExperimentalWarning",
  ];
}

/** Starts the host for `module`; rejects (and ends the child) when the module does not load. */
export function startHost(
  module: string,
  folder: string,
  walls: HostWalls,
  log: Logger,
): Promise<StartedHost> {
  const plugin = basename(folder);
  const root = walls.resolveRoot;
  const target = root === undefined ? module : join(root, module);
  const child = spawn(
    process.execPath,
    [...hostExecArgv(walls), HOST_SCRIPT, target, String(walls.maxMessageBytes), root ?? ""],
    {
      cwd: folder,
      // Nothing of the daemon's environment (store URLs, tokens) reaches plugin code.
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      // fd 3: the message pipe (a socket pair both ways). No 'ipc': see the comment at the top.
      stdio: ["ignore", "pipe", "pipe", "pipe"],
      ...(walls.user === undefined ? {} : { uid: walls.user.uid, gid: walls.user.gid }),
    },
  );
  forwardOutput(child, plugin, log);
  // A spawn error must never become an unhandled 'error' event in the daemon; the owner handles exits.
  child.on("error", () => undefined);
  const channel = new HostChannel(child.stdio[3] as Duplex, walls.maxMessageBytes);
  // Whatever the plugin wrote, only its own process pays: the daemon logs why and kills it.
  channel.onBroken((why) => {
    log.error({ plugin, reason: why }, `plugin ${plugin} broke its message channel: ${why}; killing it`);
    child.kill("SIGKILL");
  });
  return new Promise<StartedHost>((resolve, reject) => {
    const fail = (reason: string) => {
      cleanup();
      child.kill("SIGKILL");
      reject(new Error(reason));
    };
    const timer = setTimeout(
      () => fail(`its module did not load within ${LOAD_TIMEOUT_MS / 1000} s`),
      LOAD_TIMEOUT_MS,
    );
    const onMessage = (m: Record<string, unknown>) => {
      if (m.type === "ready") {
        cleanup();
        const handlers = Array.isArray(m.handlers)
          ? m.handlers.filter((h): h is [string, boolean] => Array.isArray(h) && typeof h[0] === "string")
          : [];
        resolve({ child, channel, hello: { name: m.name, version: m.version, handlers } });
      } else if (m.type === "load-failed") {
        fail(`its module failed to load: ${String(m.message)}`);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`its process ended while loading (${channel.broken ?? describeExit(code, signal)})`);
    const onError = (error: Error) => fail(`its process failed: ${error.message}`);
    const offMessage = channel.onMessage(onMessage);
    const cleanup = () => {
      clearTimeout(timer);
      offMessage();
      child.off("exit", onExit);
      child.off("error", onError);
    };
    child.on("exit", onExit);
    child.on("error", onError);
  });
}
