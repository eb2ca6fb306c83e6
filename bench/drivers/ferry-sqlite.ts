/**
 * Ferry on its SQLite store, through the public library API (SPEC.md "Library").
 *
 * Ferry is loaded at run time and typed structurally below, so bench/ type-checks and the other
 * drivers run while src/index.ts is still being written; if the import fails the harness skips this
 * driver and reports why.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BenchDriver, batches, type CreateDriver, type OnStart } from "../driver.js";

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
  worker(options: { queues: string[]; concurrency: number; handlers: Record<string, Handler> }): FerryWorker;
  close(): Promise<void>;
}

interface FerryStatic {
  open(options: { store: string }): Promise<FerryClient>;
}

class FerrySqliteDriver implements BenchDriver {
  readonly name = "ferry-sqlite";
  readonly notes = {
    store: "sqlite: (Ferry's defaults for journal and synchronous)",
    enqueue: "launchMany per batch; launch per job in latency mode (results kept, Ferry's default retention)",
    handler: HANDLER,
  };
  private dir = "";
  private ferry: FerryClient | null = null;
  private worker: FerryWorker | null = null;

  constructor(private readonly Ferry: FerryStatic) {}

  async setup(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "ferry-bench-ferry-"));
    this.ferry = await this.Ferry.open({ store: `sqlite:${join(this.dir, "ferry.db")}` });
  }

  async teardown(): Promise<void> {
    await this.stopConsumer();
    await this.ferry?.close();
    this.ferry = null;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
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

  private need(): FerryClient {
    if (!this.ferry) throw new Error("ferry-sqlite: setup() not called");
    return this.ferry;
  }
}

export const createDriver: CreateDriver = async () => {
  const mod = (await import(FERRY_ENTRY)) as { Ferry?: Partial<FerryStatic> };
  if (typeof mod.Ferry?.open !== "function") throw new Error("src/index.ts does not export Ferry.open yet");
  return new FerrySqliteDriver(mod.Ferry as FerryStatic);
};
