/**
 * Throw-away nats-server processes for tests: each listens on loopback, on a free port unless one
 * is given, with a store directory of its own (a fresh temp folder unless one is given, so a
 * server can be restarted on the same port and data). The binary is /usr/sbin/nats-server, or
 * FERRY_TEST_NATS_SERVER.
 *
 *   const server = await startNatsServer(["-js"]);
 *   … connect to server.url …
 *   await server.stop();                                   // SIGTERM, SIGKILL after 5 s, folder removed
 *
 *   await first.stop({ keepDir: true });                   // later: the same server again
 *   const again = await startNatsServer(["-js"], { port: first.port, dir: first.dir });
 *
 * The helper sets -a, -p and -sd itself (use the options, not args, for them), and waits for the
 * "Server is ready" line on stderr: do not pass -l/--log. Cluster flags (--cluster, --routes,
 * --cluster_name) go in args; `freePort()` gives their ports.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NATS_SERVER_BIN = process.env.FERRY_TEST_NATS_SERVER ?? "/usr/sbin/nats-server";

export interface NatsServerProcess {
  readonly port: number;
  /** `nats://127.0.0.1:<port>` (a TLS server answers on the same address). */
  readonly url: string;
  /** The store directory (`-sd`), yours to reuse for a restart. */
  readonly dir: string;
  readonly pid: number;
  /** Resolves when the process has ended, however it ended. */
  readonly exited: Promise<void>;
  /** Everything the server logged so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Sends a signal and returns at once (SIGSTOP/SIGCONT to freeze, SIGKILL to crash it). */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after `graceMs`; then removes the store directory unless `keepDir`. */
  stop(options?: { keepDir?: boolean; graceMs?: number }): Promise<void>;
}

export interface StartNatsServerOptions {
  /** Listen here (e.g. to restart a server where it was); a free port by default. */
  readonly port?: number;
  /** Store directory; a new temp folder by default. */
  readonly dir?: string;
  /** How long the server may take to say it is ready. Default 10 s. */
  readonly readyTimeoutMs?: number;
}

/** Servers still running when the test process exits are killed, so none outlives a crashed run. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts `nats-server -a 127.0.0.1 -p <port> -sd <dir> …args` and resolves once it logs that it is
 * ready. Rejects, with the server's log, if it exits or stays silent instead.
 */
export async function startNatsServer(
  args: readonly string[] = [],
  options: StartNatsServerOptions = {},
): Promise<NatsServerProcess> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "ferry-nats-"));
  const child = spawn(NATS_SERVER_BIN, ["-a", "127.0.0.1", "-p", String(port), "-sd", dir, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let log = "";
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      running.delete(child);
      resolve();
    });
    // A binary that cannot be started never emits "exit" in some Node versions: "error" ends it too.
    child.once("error", (error) => {
      log += `\n[spawn error] ${error.message}`;
      running.delete(child);
      resolve();
    });
  });
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      log += chunk.toString("utf8");
      if (log.includes("Server is ready")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    timer = setTimeout(
      () => reject(new Error(`nats-server on port ${port} not ready after ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    );
    void exited.then(() => reject(new Error(`nats-server on port ${port} exited before it was ready`)));
  }).finally(() => clearTimeout(timer));

  const stop = async ({ keepDir = false, graceMs = 5_000 }: { keepDir?: boolean; graceMs?: number } = {}) => {
    if (running.has(child)) {
      // A frozen (SIGSTOP) server would only act on SIGTERM once continued.
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(killer);
    }
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    await ready;
  } catch (error) {
    await stop({ keepDir: options.dir !== undefined, graceMs: 1_000 });
    throw new Error(`${(error as Error).message}; its log:\n${log}`, { cause: error });
  }
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    dir,
    pid: child.pid ?? -1,
    exited,
    output: () => log,
    kill: (signal) => {
      child.kill(signal);
    },
    stop,
  };
}

/** A loopback port nobody listens on right now (the kernel picks it; a race is unlikely in tests). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP address for a free port");
  return address.port;
}
