/**
 * Starting one plugin host (plugin-host.mjs) as a child process behind its walls (HostWalls): a
 * clean environment, a capped heap, Node's permission model, and another user when the daemon is
 * root; the plugin's folder as working directory, its output into the daemon's log. Answers once
 * the host says what the plugin exports, or fails with why it could not load.
 */
import { type ChildProcess, fork } from "node:child_process";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import type { Logger } from "../daemon/log.js";
import { HOST_SCRIPT } from "./ferry-files.js";
/** The heap a plugin process may grow to: a leak ends it, not the machine. */
export const PLUGIN_HEAP_MB = 256;
/** How long a plugin's module may take to import. */
const LOAD_TIMEOUT_MS = 10_000;
/** Longest line of a plugin's output kept in the log. */
const MAX_LINE = 2_000;

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
  /**
   * The private folder through which the plugin's module is imported, so that `ferry` resolves
   * to this daemon's Ferry (resolve-root.ts); absent: the module is imported where it lies.
   */
  readonly resolveRoot?: string | undefined;
}

export interface StartedHost {
  readonly child: ChildProcess;
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
export function hostExecArgv(walls: HostWalls): string[] {
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

/** Forks the host for `module`; rejects (and ends the child) when the module does not load. */
export function startHost(
  module: string,
  folder: string,
  walls: HostWalls,
  log: Logger,
): Promise<StartedHost> {
  const root = walls.resolveRoot;
  const child = fork(HOST_SCRIPT, root === undefined ? [module] : [join(root, module), root], {
    cwd: folder,
    // Nothing of the daemon's environment (store URLs, tokens) reaches plugin code.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    execArgv: hostExecArgv(walls),
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    serialization: "json",
    ...(walls.user === undefined ? {} : { uid: walls.user.uid, gid: walls.user.gid }),
  });
  forwardOutput(child, basename(folder), log);
  // An IPC error must never become an unhandled 'error' event in the daemon; the owner handles exits.
  child.on("error", () => undefined);
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
    const onMessage = (message: unknown) => {
      const m = message as { type?: unknown; message?: unknown } & Partial<HostHello>;
      if (m?.type === "ready") {
        cleanup();
        const handlers = Array.isArray(m.handlers)
          ? m.handlers.filter((h): h is [string, boolean] => Array.isArray(h) && typeof h[0] === "string")
          : [];
        resolve({ child, hello: { name: m.name, version: m.version, handlers } });
      } else if (m?.type === "load-failed") {
        fail(`its module failed to load: ${String(m.message)}`);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`its process ended while loading (${describeExit(code, signal)})`);
    const onError = (error: Error) => fail(`its process failed: ${error.message}`);
    const cleanup = () => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      child.off("error", onError);
    };
    child.on("message", onMessage);
    child.on("exit", onExit);
    child.on("error", onError);
  });
}

/** A plugin's stdout and stderr, line by line, into the daemon's log (never its stdout). */
function forwardOutput(child: ChildProcess, plugin: string, log: Logger): void {
  for (const stream of ["stdout", "stderr"] as const) {
    const source = child[stream];
    if (source === null) continue;
    createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) =>
      log.info({ plugin, stream }, line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line),
    );
  }
}
