import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * WAL checkpoints copy committed pages into the database file and fsync it: milliseconds of
 * blocking I/O. SQLite runs them inside whichever commit crosses the threshold, which would put
 * an fsync on the event loop now and then and spoil launch and claim latency. Instead the main
 * connection turns auto-checkpointing off and this thread, with its own connection, checkpoints
 * in the background (PASSIVE: it never blocks writers or readers).
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma("busy_timeout = 1000");
const tick = () => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy or locked: the next tick tries again.
  }
};
const timer = setInterval(tick, workerData.intervalMs);
parentPort.on("message", (message) => {
  if (message === "stop") {
    clearInterval(timer);
    tick();
    db.close();
    parentPort.close();
  }
});
`;

export class Checkpointer {
  readonly #thread: Worker;

  constructor(path: string, intervalMs = 200) {
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    this.#thread = new Worker(THREAD_SOURCE, { eval: true, workerData: { path, driver, intervalMs } });
    // The thread must never keep a process alive on its own, nor crash it.
    this.#thread.unref();
    this.#thread.on("error", () => undefined);
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.#thread.once("exit", () => resolve()));
    // Held while stopping, so close() resolves even when nothing else keeps the process alive.
    this.#thread.ref();
    this.#thread.postMessage("stop");
    await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref())]);
    await this.#thread.terminate();
  }
}
