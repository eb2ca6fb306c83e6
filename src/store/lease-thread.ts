import { Worker } from "node:worker_threads";
import type { LeaseRef } from "./store.js";

/**
 * The thread's source for a store that keeps leases only (PostgreSQL, NATS): the held sets, the
 * tick that renews a worker's leases once its heartbeat is clearly late (the healthy main thread
 * renews every third of a lease) and, with a loop beat, only while the event loop is stalled, and
 * the message protocol below. `store` is the store's part, plain JavaScript that defines
 * `async renewLeases(entry)` (true when every lease of `entry.leases`, `[id, fence]` pairs, was
 * renewed for `entry.leaseMs`; a failure is tried again at the next tick) and `async closeStore()`.
 */
export function leaseKeeperSource(store: string): string {
  return `
const { parentPort, workerData } = require("node:worker_threads");
const held = new Map(); // worker id -> { leases, leaseMs, until, renewedAt }
const loopBeat = workerData.loopBeat === undefined ? undefined : new Float64Array(workerData.loopBeat);
${store}
let busy = false;
async function tick() {
  if (busy) return;
  busy = true;
  try {
    const now = Date.now();
    for (const [worker, entry] of held) {
      if (now > entry.until) { held.delete(worker); continue; }
      if (now - entry.renewedAt < entry.leaseMs / 2 || entry.leases.length === 0) continue;
      // A loop that still turns will send the heartbeat itself.
      if (loopBeat !== undefined && now - loopBeat[0] < entry.leaseMs / 3) continue;
      if (await renewLeases(entry).catch(() => false)) entry.renewedAt = now;
    }
  } finally {
    busy = false;
  }
}
const timer = setInterval(() => void tick(), workerData.tickMs);
parentPort.on("message", (message) => {
  if (message.type === "leases") {
    const entry = held.get(message.worker);
    if (message.forget) held.delete(message.worker);
    else if (message.add) {
      if (entry !== undefined) { entry.leases.push(...message.leases); entry.until = message.until; }
    } else {
      held.set(message.worker, { leases: message.leases, leaseMs: message.leaseMs, until: message.until, renewedAt: Date.now() });
    }
  } else if (message.type === "stop") {
    clearInterval(timer);
    const done = () => parentPort.close();
    closeStore().then(done, done);
  }
});
`;
}

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
