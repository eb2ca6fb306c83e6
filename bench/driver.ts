/**
 * The contract every benchmarked system implements. One driver per file under bench/drivers/, listed
 * once in bench/drivers/index.ts; scenarios (bench/scenarios/) only ever talk to this interface.
 */

/**
 * Called by a latency consumer the moment a handler starts, with the sentAt its payload carried
 * (sentAt is unique per job, so it also identifies the job for duplicate detection).
 */
export type OnStart = (sentAt: number) => void;

export interface BenchDriver {
  /** "raw-sqlite", "bullmq", "ferry-sqlite", … (the key in the driver list). */
  readonly name: string;
  /** Choices that bear on fairness (durability, retention, …), echoed in the JSON output. */
  readonly notes: Readonly<Record<string, string | number | boolean>>;
  /** Fresh, isolated state: a temp file, a unique queue name. */
  setup(): Promise<void>;
  /** Removes everything setup created. */
  teardown(): Promise<void>;
  /** Pre-enqueue n no-op jobs as fast as the system allows, in batches of BULK_BATCH. */
  enqueueBulk(n: number): Promise<void>;
  /**
   * Optional, untimed: after a bulk enqueue and before a timed drain, let the engine settle as it
   * would on its own soon after (raw-pg: ANALYZE, which autovacuum would run; without fresh
   * statistics PostgreSQL sorts the whole backlog on every claim).
   */
  settle?(): Promise<void>;
  /** Process until n jobs are done, then stop the workers (in-flight jobs finished). */
  drain(n: number, concurrency: number): Promise<void>;
  /** Start workers for latency mode: producer and worker live in this one process. */
  startLatencyConsumer(concurrency: number, onStart: OnStart): Promise<void>;
  /** Latency mode: enqueue one job whose payload carries sentAt (performance.now()). */
  enqueueOne(sentAt: number): Promise<void>;
  /** Stop the latency workers. */
  stopConsumer(): Promise<void>;
  /** Bytes held outside this process for the queued jobs (e.g. Redis used_memory); absent if none. */
  externalMemoryBytes?(): Promise<number>;
  /**
   * Optional, with attach(), for the scenarios that run workers in child processes: after setup,
   * what a fresh instance in another process needs to reach this setup's store (a URL, a name).
   */
  share?(): string;
  /**
   * Optional, in a child process and instead of setup(): connect to the store a parent's share()
   * described, creating and removing nothing (the parent's teardown removes it).
   */
  attach?(shared: string): Promise<AttachedWorker>;
}

/** Workers on a store another process set up (see BenchDriver.attach). */
export interface AttachedWorker {
  /**
   * Starts workers at `concurrency`: onDone once per job finished (acked / committed), onError if
   * the workers fail while running (a child process reports it instead of stalling to its timeout).
   */
  start(concurrency: number, onDone: () => void, onError: (err: unknown) => void): Promise<void>;
  /** Stops taking jobs and waits for the ones in flight. start() may be called again after. */
  stop(): Promise<void>;
  /** Disconnects; the store stays. */
  close(): Promise<void>;
}

/** What each driver module exports. May reject (missing library, server down): the driver is skipped. */
export type CreateDriver = () => Promise<BenchDriver>;

export interface DriverModule {
  readonly createDriver: CreateDriver;
}

/** Jobs per bulk-enqueue round trip / transaction, the same for every driver. */
export const BULK_BATCH = 1000;

/** Splits n into batch sizes of at most `size`. */
export function* batches(n: number, size = BULK_BATCH): Generator<number> {
  for (let left = n; left > 0; left -= size) yield Math.min(size, left);
}
