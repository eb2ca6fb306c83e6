/**
 * pg-boss 10 (devDependency) on the local PostgreSQL, in a fresh schema per setup (its `schema`
 * option): one queue, `insert` for bulk, `send` per job in latency mode, one polling `work` worker.
 */
import PgBoss from "pg-boss";
import { type BenchDriver, batches, type CreateDriver, type OnStart } from "../driver.js";
import { dropSchema, PG_URL, pgLabel, probePostgres, uniqueSchema } from "../lib/pg.js";
import { sleep } from "../lib/time.js";

const QUEUE = "bench-noop";
/** The least pg-boss accepts (its POLICY.MIN_POLLING_INTERVAL_MS = 500). */
const POLLING_INTERVAL_S = 0.5;

interface Payload {
  readonly sentAt?: number;
}

class PgBossDriver implements BenchDriver {
  readonly name = "pg-boss";
  readonly notes = {
    server: pgLabel(),
    schema: "fresh schema per setup (`schema` option), dropped at teardown",
    queue:
      "one standard-policy queue (createQueue); cron scheduling off (`schedule: false`, unused), maintenance on",
    polling: `work() polls every ${POLLING_INTERVAL_S} s, the minimum it allows; no LISTEN/NOTIFY, and notifyWorker() is not used`,
    concurrency:
      "one work() worker with batchSize = concurrency, each job of a batch its own promise: at most `concurrency` jobs in flight",
    ceiling:
      "pg-boss 10 waits out the polling interval after every fetch, even a full one: at most batchSize jobs per 0.5 s (100 jobs/s at concurrency 50)",
    complete:
      "pg-boss completes the batch in one statement after the handler; completed jobs stay in the job table (archived after 12 h by default)",
    bulk: "insert() per batch (one statement)",
  };
  private schema = "";
  private boss: PgBoss | null = null;
  private workerId: string | null = null;

  async setup(): Promise<void> {
    try {
      this.schema = uniqueSchema("pgboss");
      const boss = new PgBoss({ connectionString: PG_URL, schema: this.schema, schedule: false });
      // An 'error' event without a listener would throw and end the whole run.
      boss.on("error", (err) => console.error(`pg-boss: ${err.message}`));
      this.boss = boss;
      await boss.start();
      await boss.createQueue(QUEUE);
    } catch (err) {
      // The harness only tears down after a successful setup: undo a half-made one here.
      await this.teardown().catch(() => {});
      throw err;
    }
  }

  async teardown(): Promise<void> {
    try {
      await this.stopConsumer().catch(() => {});
      await this.boss?.stop({ graceful: true, wait: true, timeout: 10_000 });
    } finally {
      this.boss = null;
      if (this.schema) await dropSchema(this.schema); // even if stopping failed: no schema left behind
      this.schema = "";
    }
  }

  async enqueueBulk(n: number): Promise<void> {
    const boss = this.need();
    for (const size of batches(n)) {
      await boss.insert(Array.from({ length: size }, () => ({ name: QUEUE, data: {} })));
    }
  }

  async drain(n: number, concurrency: number): Promise<void> {
    let done = 0;
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const boss = this.need();
    const id = await this.work(concurrency, () => {
      if (++done === n) finish();
    });
    try {
      await finished;
    } finally {
      await boss.offWork({ id });
    }
    // pg-boss completes a batch after its handler returns without awaiting it: the drain is over when
    // no job of the queue is left before 'completed'.
    while (Number(await boss.getQueueSize(QUEUE, { before: "completed" })) > 0) await sleep(5);
  }

  async startLatencyConsumer(concurrency: number, onStart: OnStart): Promise<void> {
    this.workerId = await this.work(concurrency, (data) => {
      if (data.sentAt !== undefined) onStart(data.sentAt);
    });
  }

  async enqueueOne(sentAt: number): Promise<void> {
    await this.need().send(QUEUE, { sentAt });
  }

  async stopConsumer(): Promise<void> {
    const id = this.workerId;
    this.workerId = null;
    if (id) await this.boss?.offWork({ id });
  }

  /** One worker fetching up to `concurrency` jobs per poll, each run as its own promise. */
  private work(concurrency: number, handler: (data: Payload) => void): Promise<string> {
    return this.need().work<Payload>(
      QUEUE,
      { batchSize: concurrency, pollingIntervalSeconds: POLLING_INTERVAL_S },
      async (jobs) => {
        await Promise.all(jobs.map(async (job) => handler(job.data)));
      },
    );
  }

  private need(): PgBoss {
    if (!this.boss) throw new Error("pg-boss: setup() not called");
    return this.boss;
  }
}

export const createDriver: CreateDriver = async () => {
  await probePostgres();
  return new PgBossDriver();
};
