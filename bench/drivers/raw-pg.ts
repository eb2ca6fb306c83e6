/**
 * The PostgreSQL engine's limit: a minimal jobs table and a claim/complete loop with no policy at all
 * (no leases, retries, results or serializers), the same loop as raw-sqlite. Ferry-Postgres is
 * measured against this.
 */
import pg from "pg";
import {
  type AttachedWorker,
  type BenchDriver,
  batches,
  type CreateDriver,
  type OnStart,
} from "../driver.js";
import { dropSchema, PG_URL, pgClient, pgLabel, probePostgres, uniqueSchema } from "../lib/pg.js";
import { pollLoop } from "../lib/time.js";

interface Row {
  readonly id: string; // bigint arrives as a string
  readonly payload: string;
}

/** The statements on one schema's jobs table (`table` already quoted). */
function statements(table: string) {
  return {
    table,
    claim: `UPDATE ${table} SET state = 'running' WHERE id IN (SELECT id FROM ${table} WHERE state = 'queued'
          ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id, payload`,
    complete: `UPDATE ${table} SET state = 'done' WHERE id = ANY($1::bigint[])`,
    insertMany: `INSERT INTO ${table} (payload) SELECT unnest($1::text[])`,
    insertOne: `INSERT INTO ${table} (payload) VALUES ($1)`,
  };
}

class RawPgDriver implements BenchDriver {
  readonly name = "raw-pg";
  readonly notes = {
    server: pgLabel(),
    durability: "server defaults (synchronous_commit as configured), no per-session tuning",
    table:
      "own schema; jobs (id bigserial, state text, payload text) + partial index on queued ids; ANALYZE after a bulk enqueue, untimed (settle)",
    claim:
      "UPDATE … WHERE id IN (SELECT … WHERE state='queued' ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED) RETURNING, prepared, one statement",
    concurrency:
      "one claimer, batches of `concurrency` (as raw-sqlite): at most `concurrency` jobs in flight, one claim and one " +
      "completion per batch. The fastest split of 50 measured here: 2 claimers x 25 ran at about half its rate, 50 x 1 at under a tenth",
    complete: "one UPDATE … WHERE id = ANY($1) per claimed batch; rows kept as 'done'",
    bulk: "one INSERT … SELECT unnest($1::text[]) per batch",
    wakeup:
      "in-process: the producer wakes the consumer after its INSERT commits (no polling, no LISTEN/NOTIFY)",
  };
  private schema = "";
  /** Claims and completes, one statement at a time. */
  private consumer: pg.Client | null = null;
  /**
   * Inserts. A pool (pg's default size, as the peers' clients have) because latency sends overlap
   * when one is slow, and sends never queue behind the consumer's claims.
   */
  private producer: pg.Pool | null = null;
  private sql = { table: "", claim: "", complete: "", insertMany: "", insertOne: "" };
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  /** Set by every wake-up, so one that lands while a claim is in flight is not lost. */
  private pending = false;

  async setup(): Promise<void> {
    try {
      this.schema = uniqueSchema("raw");
      this.consumer = await connect();
      this.producer = new pg.Pool({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
      this.producer.on("error", (err) => console.error(`raw-pg pool: ${err.message}`));
      const jobs = `${this.consumer.escapeIdentifier(this.schema)}.jobs`;
      await this.consumer.query(`CREATE SCHEMA ${this.consumer.escapeIdentifier(this.schema)}`);
      await this.consumer.query(
        `CREATE TABLE ${jobs} (id bigserial PRIMARY KEY, state text NOT NULL DEFAULT 'queued', payload text NOT NULL)`,
      );
      await this.consumer.query(`CREATE INDEX jobs_queued ON ${jobs} (id) WHERE state = 'queued'`);
      this.sql = statements(jobs);
    } catch (err) {
      // The harness only tears down after a successful setup: undo a half-made one here.
      await this.teardown().catch(() => {});
      throw err;
    }
  }

  async teardown(): Promise<void> {
    await this.stopConsumer().catch(() => {});
    await Promise.all([this.consumer?.end(), this.producer?.end()].map((p) => p?.catch(() => {})));
    this.consumer = null;
    this.producer = null;
    if (this.schema) await dropSchema(this.schema);
    this.schema = "";
  }

  async enqueueBulk(n: number): Promise<void> {
    const producer = this.needProducer();
    for (const size of batches(n)) {
      await producer.query({
        name: "insert-many",
        text: this.sql.insertMany,
        values: [Array(size).fill("{}")],
      });
    }
  }

  /** Fresh statistics, as autovacuum would gather: else the claim sorts the whole backlog each time. */
  async settle(): Promise<void> {
    await this.needProducer().query(`ANALYZE ${this.sql.table}`);
  }

  async drain(n: number, concurrency: number): Promise<void> {
    let done = 0;
    while (done < n) {
      const rows = await this.claim(Math.min(concurrency, n - done));
      if (rows.length === 0) throw new Error(`raw-pg: queue empty after ${done} of ${n} jobs`);
      await this.runBatch(rows, noop);
      done += rows.length;
    }
  }

  async startLatencyConsumer(concurrency: number, onStart: OnStart): Promise<void> {
    this.running = true;
    const handler = (row: Row): void => {
      const { sentAt } = JSON.parse(row.payload) as { sentAt: number };
      onStart(sentAt);
    };
    this.loop = (async () => {
      while (this.running) {
        this.pending = false;
        const rows = await this.claim(concurrency);
        if (rows.length > 0) await this.runBatch(rows, handler);
        else if (!this.pending && this.running) await new Promise<void>((resolve) => (this.wake = resolve));
      }
    })();
    this.loop.catch(() => {}); // surfaced by stopConsumer; this only keeps it from being "unhandled"
  }

  async enqueueOne(sentAt: number): Promise<void> {
    await this.needProducer().query({
      name: "insert-one",
      text: this.sql.insertOne,
      values: [JSON.stringify({ sentAt })],
    });
    this.wakeConsumer();
  }

  async stopConsumer(): Promise<void> {
    this.running = false;
    this.wakeConsumer();
    const loop = this.loop;
    this.loop = Promise.resolve();
    await loop;
  }

  /** The schema's name: another process's claims go to the same table. */
  share(): string {
    if (!this.schema) throw new Error("raw-pg: setup() not called");
    return this.schema;
  }

  /**
   * The latency loop's claim/run/complete on the parent's table, with no wake-up from a producer:
   * a claim that finds nothing polls again after `pollLoop`'s idle wait until stop.
   */
  async attach(schema: string): Promise<AttachedWorker> {
    const consumer = await connect();
    this.consumer = consumer; // this.schema stays unset: teardown closes and drops nothing
    this.sql = statements(`${consumer.escapeIdentifier(schema)}.jobs`);
    return {
      start: async (concurrency, onDone, onError) => {
        this.running = true;
        this.loop = pollLoop(
          async () => {
            const rows = await this.claim(concurrency);
            if (rows.length > 0) await this.runBatch(rows, noop);
            return rows.length;
          },
          () => this.running,
          onDone,
        );
        this.loop.catch(onError);
      },
      stop: () => this.stopConsumer(),
      close: () => this.teardown(),
    };
  }

  private async claim(limit: number): Promise<Row[]> {
    const result = await this.needConsumer().query<Row>({
      name: "claim",
      text: this.sql.claim,
      values: [limit],
    });
    return result.rows;
  }

  /** Runs each job as its own promise (as a worker at this concurrency would), completes the batch. */
  private async runBatch(rows: readonly Row[], handler: (row: Row) => void): Promise<void> {
    await Promise.all(rows.map(async (row) => handler(row)));
    await this.needConsumer().query({
      name: "complete",
      text: this.sql.complete,
      values: [rows.map((row) => row.id)],
    });
  }

  private wakeConsumer(): void {
    this.pending = true;
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private needConsumer(): pg.Client {
    if (!this.consumer) throw new Error("raw-pg: setup() not called");
    return this.consumer;
  }

  private needProducer(): pg.Pool {
    if (!this.producer) throw new Error("raw-pg: setup() not called");
    return this.producer;
  }
}

async function connect(): Promise<pg.Client> {
  const client = pgClient();
  client.on("error", (err) => console.error(`raw-pg connection: ${err.message}`));
  await client.connect();
  return client;
}

/** A no-op handler that still decodes its payload, as any worker would. */
function noop(row: Row): void {
  JSON.parse(row.payload);
}

export const createDriver: CreateDriver = async () => {
  await probePostgres();
  return new RawPgDriver();
};
