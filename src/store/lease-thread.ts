import { Worker } from "node:worker_threads";
import type { LeaseRef } from "./store.js";

/**
 * The main-thread side of a store's lease-keeping thread (SQLite: sqlite/background-thread.ts,
 * PostgreSQL: postgres/lease-keeper.ts). Both threads speak one protocol: `leases` messages
 * (replace a worker's set, add to it, or forget it) and `stop`.
 */
export class LeaseThread {
  readonly #thread: Worker;
  readonly #beat: ReturnType<typeof setInterval> | undefined;

  /**
   * `loopBeatMs`: the main thread writes the time into shared memory this often, and the thread
   * gets it as `workerData.loopBeat` (a Float64Array's buffer): it can then tell a stalled event
   * loop from a merely late heartbeat.
   */
  constructor(
    source: string,
    workerData: Record<string, unknown>,
    options: { readonly loopBeatMs?: number } = {},
  ) {
    let loopBeat: SharedArrayBuffer | undefined;
    if (options.loopBeatMs !== undefined) {
      loopBeat = new SharedArrayBuffer(8);
      const beat = new Float64Array(loopBeat);
      beat[0] = Date.now();
      this.#beat = setInterval(() => {
        beat[0] = Date.now();
      }, options.loopBeatMs);
      this.#beat.unref();
    }
    this.#thread = new Worker(source, { eval: true, workerData: { ...workerData, loopBeat } });
    // The thread must never keep a process alive on its own, nor crash it.
    this.#thread.unref();
    this.#thread.on("error", () => undefined);
  }

  /**
   * Keep renewing these leases until `until` (epoch ms): they replace the worker's previous set
   * (a heartbeat), or join it (`add`: a claim).
   */
  keepLeases(worker: string, leases: readonly LeaseRef[], leaseMs: number, until: number, add = false): void {
    this.#thread.postMessage({
      type: "leases",
      add,
      forget: false,
      worker,
      leases: leases.map((l) => [l.id, l.fence]),
      leaseMs,
      until,
    });
  }

  /** The worker stopped: renew nothing more for it. */
  forget(worker: string): void {
    this.#thread.postMessage({ type: "leases", forget: true, worker });
  }

  async stop(): Promise<void> {
    clearInterval(this.#beat);
    const exited = new Promise<void>((resolve) => this.#thread.once("exit", () => resolve()));
    // Held while stopping, so close() resolves even when nothing else keeps the process alive.
    this.#thread.ref();
    this.#thread.postMessage({ type: "stop" });
    await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref())]);
    await this.#thread.terminate();
  }
}
