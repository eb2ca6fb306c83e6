/**
 * The SQLite engine's limit: a minimal jobs table and a claim/complete loop with no policy at all
 * (no leases, retries, results or serializers). Ferry-SQLite is measured against this.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  type AttachedWorker,
  type BenchDriver,
  batches,
  type CreateDriver,
  type OnStart,
} from "../driver.js";
import { pollLoop } from "../lib/time.js";

interface Row {
  readonly id: number;
  readonly payload: string;
}

const SCHEMA = `
  CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL DEFAULT 'queued', payload TEXT NOT NULL);
  CREATE INDEX jobs_queued ON jobs (id) WHERE state = 'queued';
`;
const CLAIM = `UPDATE jobs SET state = 'running'
  WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?) RETURNING id, payload`;

class RawSqliteDriver implements BenchDriver {
  readonly name = "raw-sqlite";
  readonly notes = {
    journal: "WAL, synchronous=NORMAL",
    claim: "UPDATE … WHERE id IN (SELECT … LIMIT concurrency) RETURNING, one transaction",
    complete: "one transaction per claimed batch",
    wakeup: "in-process: the producer wakes the consumer after its insert (no polling)",
  };
  private dir = "";
  private file = "";
  private db: Database.Database | null = null;
  private insertBatch: (count: number, payload: string) => void = () => {};
  private claim: (limit: number) => Row[] = () => [];
  private complete: (ids: readonly number[]) => void = () => {};
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;

  async setup(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "ferry-bench-raw-"));
    this.file = join(this.dir, "raw.db");
    this.open(this.file, true);
  }

  /**
   * Opens the file (making the table if `create`) and prepares the statements. Several processes
   * share it in WAL mode; better-sqlite3 waits up to 5 s on another one's write lock.
   */
  private open(file: string, create: boolean): void {
    const db = new Database(file);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    if (create) db.exec(SCHEMA);
    const insert = db.prepare<[string]>("INSERT INTO jobs (payload) VALUES (?)");
    const claim = db.prepare<[number], Row>(CLAIM);
    const done = db.prepare<[number]>("UPDATE jobs SET state = 'done' WHERE id = ?");
    this.insertBatch = db.transaction((count: number, payload: string) => {
      for (let i = 0; i < count; i++) insert.run(payload);
    });
    this.claim = db.transaction((limit: number) => claim.all(limit));
    this.complete = db.transaction((ids: readonly number[]) => {
      for (const id of ids) done.run(id);
    });
    this.db = db;
  }

  async teardown(): Promise<void> {
    await this.stopConsumer();
    this.db?.close();
    this.db = null;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = "";
    this.file = "";
  }

  /** The database file: another process opens it beside this one. */
  share(): string {
    if (!this.file) throw new Error("raw-sqlite: setup() not called");
    return this.file;
  }

  /**
   * The latency loop's claim/run/complete on the parent's file, with no wake-up from a producer: a
   * claim that finds nothing polls again after `pollLoop`'s idle wait until stop.
   */
  async attach(file: string): Promise<AttachedWorker> {
    this.open(file, false); // this.dir stays unset: teardown closes and removes nothing
    return {
      start: async (concurrency, onDone, onError) => {
        this.running = true;
        this.loop = pollLoop(
          async () => {
            const rows = this.claim(concurrency);
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

  async enqueueBulk(n: number): Promise<void> {
    for (const size of batches(n)) this.insertBatch(size, "{}");
  }

  async drain(n: number, concurrency: number): Promise<void> {
    let done = 0;
    while (done < n) {
      const rows = this.claim(Math.min(concurrency, n - done));
      if (rows.length === 0) throw new Error(`raw-sqlite: queue empty after ${done} of ${n} jobs`);
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
        const rows = this.claim(concurrency);
        if (rows.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
        else await this.runBatch(rows, handler);
      }
    })();
  }

  async enqueueOne(sentAt: number): Promise<void> {
    this.insertBatch(1, JSON.stringify({ sentAt }));
    this.wakeConsumer();
  }

  async stopConsumer(): Promise<void> {
    this.running = false;
    this.wakeConsumer();
    await this.loop;
  }

  /** Runs each job as its own promise (as a worker at this concurrency would), completes the batch. */
  private async runBatch(rows: readonly Row[], handler: (row: Row) => void): Promise<void> {
    await Promise.all(rows.map(async (row) => handler(row)));
    this.complete(rows.map((row) => row.id));
  }

  private wakeConsumer(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** A no-op handler that still decodes its payload, as any worker would. */
function noop(row: Row): void {
  JSON.parse(row.payload);
}

export const createDriver: CreateDriver = async () => new RawSqliteDriver();
