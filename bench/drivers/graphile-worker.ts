/**
 * graphile-worker 0.17 (devDependency) on the local PostgreSQL, in a fresh schema per setup
 * (its `schema` option): WorkerUtils to enqueue, a runner per drain / latency run with a no-op task.
 * `createGraphileDriver({ localQueue: true })` is the graphile-worker-localqueue variant.
 */
import {
  Logger,
  makeWorkerUtils,
  type Runner,
  type RunnerOptions,
  run,
  type WorkerUtils,
} from "graphile-worker";
import { type BenchDriver, batches, type CreateDriver, type OnStart } from "../driver.js";
import { dropSchema, PG_URL, pgLabel, probePostgres, uniqueSchema } from "../lib/pg.js";

const TASK = "noop";

/** Warnings and errors to stderr; its info lines would otherwise land on stdout beside the JSON. */
const logger = new Logger(() => (level, message) => {
  const text = level as string;
  if (text === "error" || text === "warning") console.error(`graphile-worker ${text}: ${message}`);
});

class GraphileWorkerDriver implements BenchDriver {
  readonly name: string;
  readonly notes: Readonly<Record<string, string | number | boolean>>;
  private schema = "";
  private utils: WorkerUtils | null = null;
  private runner: Runner | null = null;

  constructor(private readonly localQueue: boolean) {
    this.name = localQueue ? "graphile-worker-localqueue" : "graphile-worker";
    this.notes = {
      server: pgLabel(),
      schema: "fresh schema per setup (`schema` option), dropped at teardown",
      concurrency:
        "`concurrency` option = the scenario's concurrency; maxPoolSize max(10, concurrency + 2), its advice",
      local_queue: localQueue
        ? "preset.worker.localQueue.size = concurrency + 1 (its documented starting point): the pool fetches and locks that many jobs per query"
        : "off (default): each worker fetches its own next job",
      complete:
        "completeJobBatchDelay not set (default -1: one completion statement per job); completed jobs are deleted",
      wakeup:
        "LISTEN/NOTIFY on jobs:insert (its own mechanism); pollInterval default 2000 ms (only for future/retry jobs)",
      bulk: "WorkerUtils.addJobs per batch (one add_jobs call)",
      runner:
        "a fresh runner per drain / latency run; its start-up (pool, migration check, LISTEN) is in the drain time",
    };
  }

  async setup(): Promise<void> {
    try {
      this.schema = uniqueSchema("graphile");
      // makeWorkerUtils installs graphile-worker's schema (migrate) before it resolves.
      this.utils = await makeWorkerUtils({ connectionString: PG_URL, schema: this.schema, logger });
    } catch (err) {
      // The harness only tears down after a successful setup: undo a half-made one here.
      await this.teardown().catch(() => {});
      throw err;
    }
  }

  async teardown(): Promise<void> {
    try {
      await this.stopConsumer().catch(() => {});
      await this.utils?.release();
    } finally {
      this.utils = null;
      if (this.schema) await dropSchema(this.schema); // even if releasing failed: no schema left behind
      this.schema = "";
    }
  }

  async enqueueBulk(n: number): Promise<void> {
    const utils = this.need();
    for (const size of batches(n)) {
      await utils.addJobs(Array.from({ length: size }, () => ({ identifier: TASK, payload: {} })));
    }
  }

  async drain(n: number, concurrency: number): Promise<void> {
    let done = 0;
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const runner = await run(
      this.options(concurrency, async () => {
        if (++done === n) finish();
      }),
    );
    try {
      await Promise.race([
        finished,
        runner.promise.then(() => Promise.reject(new Error("runner ended early"))),
      ]);
    } finally {
      await runner.stop(); // graceful: in-flight jobs finish and are completed, so they count in the time
    }
  }

  async startLatencyConsumer(concurrency: number, onStart: OnStart): Promise<void> {
    this.runner = await run(
      this.options(concurrency, async (payload) => {
        onStart((payload as { sentAt: number }).sentAt);
      }),
    );
  }

  async enqueueOne(sentAt: number): Promise<void> {
    await this.need().addJob(TASK, { sentAt });
  }

  async stopConsumer(): Promise<void> {
    const runner = this.runner;
    this.runner = null;
    await runner?.stop();
  }

  private options(concurrency: number, task: (payload: unknown) => Promise<void>): RunnerOptions {
    const options: RunnerOptions = {
      connectionString: PG_URL,
      schema: this.schema,
      concurrency,
      maxPoolSize: Math.max(10, concurrency + 2),
      noHandleSignals: true, // the harness owns the process
      logger,
      taskList: { [TASK]: task },
    };
    if (this.localQueue) options.preset = { worker: { localQueue: { size: concurrency + 1 } } };
    return options;
  }

  private need(): WorkerUtils {
    if (!this.utils) throw new Error(`${this.name}: setup() not called`);
    return this.utils;
  }
}

export async function createGraphileDriver({ localQueue }: { localQueue: boolean }): Promise<BenchDriver> {
  await probePostgres();
  return new GraphileWorkerDriver(localQueue);
}

export const createDriver: CreateDriver = () => createGraphileDriver({ localQueue: false });
