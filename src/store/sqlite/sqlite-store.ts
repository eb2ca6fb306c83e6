import { EventEmitter } from "node:events";
import { ErrorCode, FerryError, invalidArgument } from "../../core/errors.js";
import { RATE_PRUNE_EVERY_MS } from "../../core/group-rate.js";
import type { Progress } from "../../core/job.js";
import { rescueOutcome } from "../rescue.js";
import type {
  AccessDocument,
  CancelResult,
  ClaimRequest,
  ClaimResult,
  EnqueueContext,
  EnqueueResult,
  HeartbeatResult,
  JobFilter,
  JobRecord,
  LeaseRef,
  ListRequest,
  NewJob,
  Outcome,
  PurgeRequest,
  QueueInfo,
  QueueOptionsUpdate,
  ScheduleFiring,
  ScheduleInput,
  SchedulePatch,
  ScheduleRecord,
  Store,
  StoreEvent,
  StoreStats,
  WorkerInfo,
} from "../store.js";
import { BackgroundThread } from "./background-thread.js";
import { makeClaim } from "./claim.js";
import { type Db, migrate, openDatabase, readRetry, type SqliteOptions, writeTx } from "./connection.js";
import { type ConsumeAnswer, makeControls } from "./controls.js";
import { makeEnqueue } from "./enqueue.js";
import { guardDatabaseFiles } from "./file-modes.js";
import { makeFinish, makeLeases, type Touched } from "./finish.js";
import { makeQueries } from "./queries.js";
import { makeRegistry } from "./registry.js";
import { makeSchedules } from "./schedules.js";

const newTouched = (): Touched => ({ changed: [], queues: new Set() });

/**
 * The embedded store: one SQLite file in WAL mode, shareable by several processes. Events reach
 * only this process (`sharedEvents = false`): other processes notice changes by polling.
 */
export class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly sharedEvents = false;
  readonly path: string;
  readonly notices: readonly string[];
  readonly #db: Db;
  readonly #events = new EventEmitter();
  /** When pruneExpired last deleted ended group-rate windows (0: not yet). */
  #ratesPrunedAt = 0;
  #parts: ReturnType<SqliteStore["prepare"]> | undefined;

  #background: BackgroundThread | undefined;
  readonly #stallMs: number;

  constructor(path: string, options: SqliteOptions = {}) {
    this.path = path;
    // Created 0600 before SQLite opens it (its -wal and -shm then follow); see file-modes.ts.
    this.notices = guardDatabaseFiles(path);
    this.#db = openDatabase(path, options);
    this.#events.setMaxListeners(0);
    this.#stallMs = options.leaseKeeperMs ?? 120_000;
    if (path !== ":memory:" && !path.startsWith("file::memory:")) {
      // Checkpoints and lease renewal run on a background thread (see background-thread.ts).
      this.#db.pragma("wal_autocheckpoint = 0");
      this.#background = new BackgroundThread(path);
    }
  }

  /** Statements are prepared after migration (they name tables the migration creates). */
  private prepare() {
    const db = this.#db;
    const enqueue = makeEnqueue(db);
    // Rowids of the jobs this process holds (see makeFinish): bounded by its running jobs.
    const rowids = new Map<string, number>();
    const { finish, cascade } = makeFinish(db, rowids);
    return {
      enqueue,
      claim: makeClaim(db, rowids),
      finish,
      leases: makeLeases(db),
      queries: makeQueries(db),
      controls: makeControls(db, cascade),
      schedules: makeSchedules(db, enqueue),
      registry: makeRegistry(db),
    };
  }

  /** Prepared on first use (also when opened with migrate: false on a migrated file). */
  private get parts() {
    if (!this.#db.open) throw new FerryError(ErrorCode.StoreUnavailable, "the store is closed");
    if (this.#parts === undefined) {
      try {
        this.#parts = this.prepare();
      } catch (error) {
        throw new FerryError(
          ErrorCode.StoreUnavailable,
          "the SQLite schema is missing or old: run `ferry migrate`",
          {
            cause: error,
          },
        );
      }
    }
    return this.#parts;
  }

  private emit(event: StoreEvent): void {
    this.#events.emit("event", event);
  }

  private announce(touched: Touched): void {
    for (const id of touched.changed) this.emit({ type: "changed", id });
    for (const queue of touched.queues) this.emit({ type: "enqueued", queue });
  }

  async migrate(): Promise<number> {
    const version = await readRetry(() => migrate(this.#db));
    this.#parts ??= this.prepare();
    return version;
  }

  /** The connection's effective settings, for operators and tests. */
  settings(): { synchronous: number; journalMode: string; busyTimeoutMs: number; walAutocheckpoint: number } {
    const read = (name: string) => this.#db.pragma(name, { simple: true });
    return {
      synchronous: read("synchronous") as number,
      journalMode: read("journal_mode") as string,
      busyTimeoutMs: read("busy_timeout") as number,
      walAutocheckpoint: read("wal_autocheckpoint") as number,
    };
  }

  async now(): Promise<number> {
    return Date.now();
  }

  async close(): Promise<void> {
    this.#events.removeAllListeners();
    await this.#background?.stop();
    this.#background = undefined;
    if (this.#db.open) this.#db.close();
  }

  async enqueue(jobs: readonly NewJob[], context: EnqueueContext = {}): Promise<EnqueueResult[]> {
    if (context.tx !== undefined) throw invalidArgument("the tx option needs the PostgreSQL store");
    if (jobs.length === 0) return [];
    const results = await writeTx(this.#db, () => this.parts.enqueue(jobs, Date.now()));
    const queues = new Set<string>();
    for (let i = 0; i < jobs.length; i++) if (!results[i]!.deduplicated) queues.add(jobs[i]!.queue);
    for (const queue of queues) this.emit({ type: "enqueued", queue });
    return results;
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    return readRetry(() => this.parts.queries.getJob(id));
  }

  async getJobs(ids: readonly string[]): Promise<JobRecord[]> {
    return readRetry(() => this.parts.queries.getJobs(ids));
  }

  async listJobs(request: ListRequest): Promise<JobRecord[]> {
    return readRetry(() => this.parts.queries.listJobs(request));
  }

  async stats(): Promise<StoreStats> {
    return readRetry(() => this.parts.queries.stats());
  }

  async consumeResult(id: string): Promise<ConsumeAnswer> {
    return writeTx(this.#db, () => this.parts.controls.consumeResult(id));
  }

  async requestCancel(id: string, graceMs: number): Promise<CancelResult> {
    const touched = newTouched();
    const result = await writeTx(this.#db, () =>
      this.parts.controls.cancel(id, graceMs, Date.now(), touched),
    );
    if (result.state === "running") this.emit({ type: "cancel", id, graceMs });
    this.announce(touched);
    return result;
  }

  async cancelMany(filter: JobFilter, graceMs: number): Promise<number> {
    const touched = newTouched();
    const count = await writeTx(this.#db, () =>
      this.parts.controls.cancelMany(filter, graceMs, Date.now(), touched),
    );
    for (const id of touched.changed) this.emit({ type: "cancel", id, graceMs });
    this.announce(touched);
    return count;
  }

  async detach(id: string): Promise<boolean> {
    return writeTx(this.#db, () => this.parts.controls.detach(id, Date.now()));
  }

  async detachMany(filter: JobFilter): Promise<number> {
    return writeTx(this.#db, () => this.parts.controls.detachMany(filter, Date.now()));
  }

  async retry(id: string): Promise<boolean> {
    const touched = newTouched();
    const done = await writeTx(this.#db, () => this.parts.controls.retry(id, Date.now(), touched));
    this.announce(touched);
    return done;
  }

  async purge(request: PurgeRequest): Promise<number> {
    return writeTx(this.#db, () => this.parts.controls.purge(request, Date.now()));
  }

  async setQueuePaused(queue: string, paused: boolean): Promise<void> {
    await writeTx(this.#db, () => this.parts.registry.setPaused(queue, paused));
    if (!paused) this.emit({ type: "enqueued", queue });
  }

  async setQueueOptions(queue: string, options: QueueOptionsUpdate): Promise<void> {
    await writeTx(this.#db, () => {
      const { groupConcurrency, groupRate } = options;
      if (groupConcurrency !== undefined) this.parts.registry.setGroupConcurrency(queue, groupConcurrency);
      if (groupRate !== undefined) this.parts.registry.setGroupRate(queue, groupRate);
    });
  }

  async listQueues(): Promise<QueueInfo[]> {
    return readRetry(() => this.parts.registry.listQueues());
  }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    const finished = request.finished ?? [];
    const touched = newTouched();
    const result = await writeTx(this.#db, () => {
      const now = Date.now();
      const applied = finished.length === 0 ? [] : this.parts.finish(finished, now, touched);
      return { jobs: this.parts.claim(request, now), applied };
    });
    if (finished.length > 0) this.announce(touched);
    if (this.#stallMs > 0 && result.jobs.length > 0) {
      this.#background?.keepLeases(
        request.workerId,
        result.jobs,
        request.leaseMs,
        Date.now() + this.#stallMs,
        true,
      );
    }
    return result;
  }

  async finish(outcomes: readonly Outcome[]): Promise<boolean[]> {
    if (outcomes.length === 0) return [];
    const touched = newTouched();
    const applied = await writeTx(this.#db, () => this.parts.finish(outcomes, Date.now(), touched));
    this.announce(touched);
    return applied;
  }

  async heartbeat(
    worker: WorkerInfo,
    leases: readonly LeaseRef[],
    leaseMs: number,
  ): Promise<HeartbeatResult> {
    const answer = await writeTx(this.#db, () =>
      this.parts.leases.heartbeat(worker, leases, leaseMs, Date.now()),
    );
    if (this.#stallMs > 0) {
      const lost = new Set(answer.lost);
      const kept = leases.filter((l) => !lost.has(l.id));
      this.#background?.keepLeases(worker.id, kept, leaseMs, Date.now() + this.#stallMs);
    }
    return answer;
  }

  async setProgress(lease: LeaseRef, progress: Progress): Promise<boolean> {
    const applied = await writeTx(this.#db, () => this.parts.leases.setProgress(lease, progress));
    if (applied) this.emit({ type: "changed", id: lease.id });
    return applied;
  }

  async rescueExpired(
    workerTtlMs: number,
  ): Promise<{ readonly requeued: number; readonly failed: number; readonly cancelled: number }> {
    // Housekeeping runs in every process each few seconds: look before taking the write lock.
    const idle = await readRetry(() => !this.parts.leases.anyExpired(Date.now(), Date.now() - workerTtlMs));
    if (idle) return { requeued: 0, failed: 0, cancelled: 0 };
    const touched = newTouched();
    const counts = await writeTx(this.#db, () => {
      const now = Date.now();
      const tally = { requeued: 0, failed: 0, cancelled: 0 };
      const outcomes: Outcome[] = [];
      for (const row of this.parts.leases.expired(now)) {
        outcomes.push(
          rescueOutcome(
            {
              ...row,
              maxAttempts: row.max_attempts,
              cancelRequested: row.cancel_requested === 1,
              lastError: row.error,
            },
            tally,
          ),
        );
      }
      this.parts.finish(outcomes, now, touched);
      this.parts.leases.dropStaleWorkers(now - workerTtlMs);
      return tally;
    });
    this.announce(touched);
    return counts;
  }

  async pruneExpired(limit: number): Promise<number> {
    const now = Date.now();
    if (now - this.#ratesPrunedAt >= RATE_PRUNE_EVERY_MS) {
      this.#ratesPrunedAt = now;
      await writeTx(this.#db, () => this.parts.registry.pruneEndedRates(now, limit));
    }
    if (!(await readRetry(() => this.parts.controls.anyExpired(Date.now())))) return 0;
    return writeTx(this.#db, () => this.parts.controls.pruneExpired(limit, Date.now()));
  }

  async removeWorker(workerId: string): Promise<void> {
    this.#background?.forget(workerId);
    await writeTx(this.#db, () => this.parts.registry.removeWorker(workerId));
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return readRetry(() => this.parts.registry.listWorkers());
  }

  async upsertSchedule(schedule: ScheduleInput): Promise<ScheduleRecord> {
    return writeTx(this.#db, () => this.parts.schedules.upsert(schedule, Date.now()));
  }

  async getSchedule(id: string): Promise<ScheduleRecord | undefined> {
    return readRetry(() => this.parts.schedules.get(id));
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return readRetry(() => this.parts.schedules.list());
  }

  async updateSchedule(id: string, patch: SchedulePatch): Promise<ScheduleRecord | undefined> {
    return writeTx(this.#db, () => this.parts.schedules.update(id, patch));
  }

  async deleteSchedule(id: string): Promise<boolean> {
    return writeTx(this.#db, () => this.parts.schedules.delete(id));
  }

  async countActive(owner: string, limit: number): Promise<number> {
    const row = await readRetry(
      () =>
        this.#db
          .prepare(
            `SELECT count(*) AS n FROM (SELECT 1 FROM jobs
               WHERE owner = ? AND state IN ('scheduled', 'queued', 'running') LIMIT ?)`,
          )
          .get(owner, limit) as { n: number },
    );
    return row.n;
  }

  async readAccess(): Promise<AccessDocument | undefined> {
    const row = await readRetry(
      () =>
        this.#db.prepare("SELECT revision, data FROM access WHERE id = 1").get() as
          | { revision: number; data: Buffer }
          | undefined,
    );
    return row === undefined ? undefined : { revision: row.revision, data: new Uint8Array(row.data) };
  }

  async writeAccess(data: Uint8Array, expectedRevision: number): Promise<number | null> {
    return writeTx(this.#db, () => {
      const changed =
        expectedRevision === 0
          ? this.#db.prepare("INSERT OR IGNORE INTO access (id, revision, data) VALUES (1, 1, ?)").run(data)
          : this.#db
              .prepare("UPDATE access SET revision = revision + 1, data = ? WHERE id = 1 AND revision = ?")
              .run(data, expectedRevision);
      return changed.changes === 1 ? expectedRevision + 1 : null;
    });
  }

  async fireDueSchedules(fire: (schedule: ScheduleRecord, now: number) => ScheduleFiring): Promise<number> {
    if (!(await readRetry(() => this.parts.schedules.anyDue(Date.now())))) return 0;
    const fired = await writeTx(this.#db, () => this.parts.schedules.fireDue(fire, Date.now()));
    for (const job of fired) this.emit({ type: "enqueued", queue: job.queue });
    return fired.length;
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    const safe = (event: StoreEvent) => {
      try {
        listener(event);
      } catch {
        // A listener's failure must not break the store or other listeners.
      }
    };
    this.#events.on("event", safe);
    return () => this.#events.off("event", safe);
  }
}
