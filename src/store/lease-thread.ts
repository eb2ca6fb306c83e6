import { Worker } from "node:worker_threads";
import type { LeaseMessage } from "./lease-book.js";
import type { LeaseRef } from "./store.js";

/**
 * Ferry runs compiled (dist/: this module is a .js file) or from its TypeScript sources (tests,
 * tsx: a .ts file). A thread module is named by its compiled name, `./x-thread.js`; from source
 * that file does not exist beside this one, so the thread loads `./x-thread.ts` instead, with tsx
 * preloaded (thread-tsx.mjs). The compiled package never needs tsx, and does not ship it.
 */
const FROM_SOURCE = import.meta.url.endsWith(".ts");

/** Where the thread's module lies, and the flags its thread needs to load it. */
function threadModule(url: URL): { readonly file: URL; readonly execArgv?: string[] } {
  if (!FROM_SOURCE) return { file: url };
  const preload = new URL("./thread-tsx.mjs", import.meta.url).href;
  return {
    file: new URL(url.href.replace(/\.js$/, ".ts")),
    execArgv: [...process.execArgv, "--import", preload],
  };
}

/**
 * The main-thread side of a store's lease-keeping thread (SQLite: sqlite/background-thread.ts,
 * PostgreSQL: postgres/lease-keeper.ts, NATS: nats/lease-keeper.ts). Every thread speaks one
 * protocol (lease-book.ts): `leases` messages (replace a worker's set, add to it, or forget it)
 * and `stop`.
 */
export class LeaseThread {
  readonly #thread: Worker;
  readonly #beat: ReturnType<typeof setInterval> | undefined;

  /**
   * `module`: the thread's module, `new URL("./x-thread.js", import.meta.url)`.
   * `loopBeatMs`: the main thread writes the time into shared memory this often, and the thread
   * gets it as `workerData.loopBeat` (a Float64Array's buffer): it can then tell a stalled event
   * loop from a merely late heartbeat.
   */
  constructor(module: URL, workerData: object, options: { readonly loopBeatMs?: number } = {}) {
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
    const { file, execArgv } = threadModule(module);
    this.#thread = new Worker(file, {
      workerData: { ...workerData, loopBeat },
      ...(execArgv === undefined ? {} : { execArgv }),
    });
    // The thread must never keep a process alive on its own, nor crash it.
    this.#thread.unref();
    this.#thread.on("error", () => undefined);
  }

  /**
   * Keep renewing these leases until `until` (epoch ms): they replace the worker's previous set
   * (a heartbeat), or join it (`add`: a claim).
   */
  keepLeases(worker: string, leases: readonly LeaseRef[], leaseMs: number, until: number, add = false): void {
    this.#post({
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
    this.#post({ type: "leases", forget: true, worker });
  }

  async stop(): Promise<void> {
    clearInterval(this.#beat);
    const exited = new Promise<void>((resolve) => this.#thread.once("exit", () => resolve()));
    // Held while stopping, so close() resolves even when nothing else keeps the process alive.
    this.#thread.ref();
    this.#post({ type: "stop" });
    await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref())]);
    await this.#thread.terminate();
  }

  #post(message: LeaseMessage): void {
    this.#thread.postMessage(message);
  }
}
