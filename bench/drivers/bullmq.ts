/**
 * BullMQ (devDependency) on the local Redis: one Queue, a Worker per run, a unique queue name per setup.
 * Needs the `ioredis` package (BullMQ 6 loads it lazily as an optional peer dependency).
 */
import { createRequire } from "node:module";
import { connect } from "node:net";
import { type Job, Queue, Worker } from "bullmq";
import { type BenchDriver, batches, type CreateDriver, type OnStart } from "../driver.js";

const host = process.env.BENCH_REDIS_HOST ?? "127.0.0.1";
const port = Number(process.env.BENCH_REDIS_PORT ?? 6379);
const connection = { host, port };
/** Completed and failed jobs are deleted at once: BullMQ's cheapest setting, and its usual advice. */
const JOB_OPTS = { removeOnComplete: true, removeOnFail: true } as const;

interface LatencyData {
  readonly sentAt: number;
}

class BullmqDriver implements BenchDriver {
  readonly name = "bullmq";
  readonly notes = {
    redis: `${host}:${port}`,
    job_options: "removeOnComplete: true, removeOnFail: true (results and failures not kept)",
    bulk: "addBulk per batch, awaited one after another",
    memory: "rss scenario reports Redis used_memory delta (queued jobs live in Redis)",
  };
  private queue: Queue | null = null;
  private worker: Worker | null = null;

  async setup(): Promise<void> {
    this.queue = new Queue(`ferry-bench-${process.pid}-${Date.now()}`, { connection });
    await this.queue.waitUntilReady();
  }

  async teardown(): Promise<void> {
    await this.stopConsumer();
    if (!this.queue) return;
    await this.queue.obliterate({ force: true, count: 10_000 });
    await this.queue.close();
    this.queue = null;
  }

  async enqueueBulk(n: number): Promise<void> {
    const queue = this.need();
    for (const size of batches(n)) {
      await queue.addBulk(Array.from({ length: size }, () => ({ name: "noop", data: {}, opts: JOB_OPTS })));
    }
  }

  async drain(n: number, concurrency: number): Promise<void> {
    let done = 0;
    let finish: () => void = () => {};
    let fail: (err: Error) => void = () => {};
    const finished = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const worker = new Worker(
      this.need().name,
      async () => {
        if (++done === n) finish();
      },
      { connection, concurrency },
    );
    worker.on("error", fail);
    worker.on("failed", (_job, err) => fail(err));
    try {
      await finished;
    } finally {
      await worker.close();
    }
  }

  async startLatencyConsumer(concurrency: number, onStart: OnStart): Promise<void> {
    this.worker = new Worker<LatencyData>(
      this.need().name,
      async (job: Job<LatencyData>) => onStart(job.data.sentAt),
      { connection, concurrency },
    );
    this.worker.on("error", (err) => console.error(`bullmq worker: ${err.message}`));
    await this.worker.waitUntilReady();
  }

  async enqueueOne(sentAt: number): Promise<void> {
    await this.need().add("noop", { sentAt }, JOB_OPTS);
  }

  async stopConsumer(): Promise<void> {
    await this.worker?.close();
    this.worker = null;
  }

  async externalMemoryBytes(): Promise<number> {
    const info = await (await this.need().getBackend().client).info();
    const used = /^used_memory:(\d+)/m.exec(info)?.[1];
    if (used === undefined) throw new Error("Redis INFO has no used_memory");
    return Number(used);
  }

  private need(): Queue {
    if (!this.queue) throw new Error("bullmq: setup() not called");
    return this.queue;
  }
}

/** Fails fast when Redis is down (the client would otherwise retry forever). */
function probeRedis(timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(
      () => socket.destroy(new Error(`Redis ${host}:${port}: connect timed out`)),
      timeoutMs,
    );
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.end();
      resolve();
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`Redis ${host}:${port} unreachable: ${err.message}`));
    });
  });
}

/** BullMQ 6 requires ioredis lazily and only fails deep inside a constructor: check up front. */
function checkIoredis(): void {
  try {
    createRequire(import.meta.url).resolve("ioredis");
  } catch {
    throw new Error("bullmq needs the 'ioredis' package: add it as a devDependency (npm i -D ioredis)");
  }
}

export const createDriver: CreateDriver = async () => {
  checkIoredis();
  await probeRedis();
  return new BullmqDriver();
};
