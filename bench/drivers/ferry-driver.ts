/**
 * Ferry through its public library API (docs/api.md), on whichever store a `FerryStore` provides:
 * ferry-sqlite.ts and ferry-postgres.ts differ only in where the store lives and how it is removed.
 *
 * Ferry is loaded at run time and typed structurally below, so bench/ type-checks and the other
 * drivers run while src/index.ts is still being written; if the import fails the harness skips the
 * driver and reports why.
 */
import { type AttachedWorker, type BenchDriver, batches, type OnStart } from "../driver.js";

/** FERRY_BENCH_ENTRY (a file URL) benchmarks another build, e.g. file:///…/dist/src/index.js. */
const FERRY_ENTRY = process.env.FERRY_BENCH_ENTRY ?? new URL("../../src/index.js", import.meta.url).href;
const HANDLER = "bench.noop";
const QUEUE = "default";

type Handler = (payload: unknown, ctx: unknown) => Promise<unknown>;

interface FerryWorker {
  start(): Promise<void>;
  stop(options?: { grace?: string }): Promise<void>;
}

interface FerryClient {
  launch(handler: string, payload: unknown): Promise<unknown>;
  launchMany(jobs: readonly { handler: string; payload: unknown }[]): Promise<unknown>;
  worker(options: {
    queues: string[];
    concurrency: number;
    prefetch?: number;
    handlers: Record<string, Handler>;
  }): FerryWorker;
  close(): Promise<void>;
}

interface FerryStatic {
  open(options: { store: string }): Promise<FerryClient>;
}

/** Where one driver instance's store lives. */
export interface FerryStore {
  /** Makes fresh, isolated room for a store (temp dir, schema name) and answers its store URL. */
  create(): Promise<string>;
  /** Removes everything create() and Ferry made there; called after the client is closed. */
  remove(): Promise<void>;
}

export interface FerryDriverOptions {
  readonly name: string;
  readonly notes: Readonly<Record<string, string | number | boolean>>;
  /** One fresh FerryStore per driver instance. */
  readonly store: () => FerryStore;
  /** Worker `prefetch`, as a multiple of the concurrency (0: Ferry's default, none). */
  readonly prefetchPerSlot?: number;
}

class FerryDriver implements BenchDriver {
  readonly name: string;
  readonly notes: Readonly<Record<string, string | number | boolean>>;
  private readonly store: FerryStore;
  private readonly prefetchPerSlot: number;
  private ferry: FerryClient | null = null;
  private worker: FerryWorker | null = null;
  /** The store URL setup() opened, for share(). */
  private url = "";

  constructor(
    private readonly Ferry: FerryStatic,
    options: FerryDriverOptions,
  ) {
    this.name = options.name;
    this.notes = {
      ...options.notes,
      enqueue:
        "launchMany per batch; launch per job in latency mode (results kept, Ferry's default retention)",
      handler: HANDLER,
    };
    this.store = options.store();
    this.prefetchPerSlot = options.prefetchPerSlot ?? 0;
  }

  async setup(): Promise<void> {
    try {
      this.url = await this.store.create();
      this.ferry = await this.Ferry.open({ store: this.url });
    } catch (err) {
      // The harness only tears down after a successful setup: undo a half-made one here.
      await this.store.remove().catch(() => {});
      throw err;
    }
  }

  async teardown(): Promise<void> {
    try {
      await this.stopConsumer();
      await this.ferry?.close();
    } finally {
      this.ferry = null;
      this.url = "";
      await this.store.remove(); // even if closing failed: no store left behind
    }
  }

  async enqueueBulk(n: number): Promise<void> {
    const ferry = this.need();
    for (const size of batches(n)) {
      await ferry.launchMany(Array.from({ length: size }, () => ({ handler: HANDLER, payload: {} })));
    }
  }

  async drain(n: number, concurrency: number): Promise<void> {
    let done = 0;
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const worker = this.need().worker({
      queues: [QUEUE],
      concurrency,
      prefetch: concurrency * this.prefetchPerSlot,
      handlers: {
        [HANDLER]: async () => {
          if (++done === n) finish();
        },
      },
    });
    await worker.start();
    try {
      await finished;
    } finally {
      await worker.stop(); // waits for in-flight jobs, so their completions are counted in the time
    }
  }

  async startLatencyConsumer(concurrency: number, onStart: OnStart): Promise<void> {
    this.worker = this.need().worker({
      queues: [QUEUE],
      concurrency,
      prefetch: concurrency * this.prefetchPerSlot,
      handlers: {
        [HANDLER]: async (payload) => {
          onStart((payload as { sentAt: number }).sentAt);
        },
      },
    });
    await this.worker.start();
  }

  async enqueueOne(sentAt: number): Promise<void> {
    await this.need().launch(HANDLER, { sentAt });
  }

  async stopConsumer(): Promise<void> {
    await this.worker?.stop();
    this.worker = null;
  }

  /** The store URL: Ferry in another process opens the same store on it. */
  share(): string {
    if (!this.url) throw new Error(`${this.name}: setup() not called`);
    return this.url;
  }

  /**
   * Ferry opened on the parent's store URL (it finds the schema / streams already made). onDone is
   * called as the handler returns: Ferry records the completion right after, and stop() waits for
   * those records, as drain() does.
   */
  async attach(url: string): Promise<AttachedWorker> {
    const ferry = await this.Ferry.open({ store: url });
    this.ferry = ferry;
    return {
      start: async (concurrency, onDone) => {
        this.worker = ferry.worker({
          queues: [QUEUE],
          concurrency,
          prefetch: concurrency * this.prefetchPerSlot,
          handlers: { [HANDLER]: async () => onDone() },
        });
        await this.worker.start();
      },
      stop: () => this.stopConsumer(),
      close: async () => {
        await this.stopConsumer();
        await ferry.close();
        this.ferry = null;
      },
    };
  }

  private need(): FerryClient {
    if (!this.ferry) throw new Error(`${this.name}: setup() not called`);
    return this.ferry;
  }
}

/** Loads Ferry (rejects if its entry point is missing or incomplete) and builds one driver. */
export async function createFerryDriver(options: FerryDriverOptions): Promise<BenchDriver> {
  const mod = (await import(FERRY_ENTRY)) as { Ferry?: Partial<FerryStatic> };
  if (typeof mod.Ferry?.open !== "function") throw new Error("src/index.ts does not export Ferry.open yet");
  return new FerryDriver(mod.Ferry as FerryStatic, options);
}
