import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import pg from "pg";
import { ErrorCode, FerryError } from "../../core/errors.js";
import { RATE_PRUNE_EVERY_MS } from "../../core/group-rate.js";
import type { JobState, Progress } from "../../core/job.js";
import { canDispatch } from "../dispatch.js";
import {
  type JobRow,
  type QueueRow,
  type ScheduleRow,
  toJobRecord,
  toQueueInfo,
  toScheduleRecord,
  toWorkerInfo,
} from "../rows.js";
import { toStoreStats } from "../stats.js";
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
import { enqueueInCallerTx } from "./caller-tx.js";
import {
  type Client,
  connectionSettings,
  inTransaction,
  migrate,
  type PostgresOptions,
  query,
} from "./connection.js";
import { type ConsumeAnswer, makeControls, makeQueries } from "./controls.js";
import { makeEnqueue } from "./enqueue.js";
import { makeFastLaunch } from "./fast-path.js";
import { makeFinish } from "./finish.js";
import { isJobId } from "./job-id.js";
import { channelOf, Listener, Outbox } from "./notifier.js";
import { makeSchedules } from "./schedules.js";
import { type PgStoreAccess, PgWorkerOps } from "./worker-ops.js";

/**
 * The PostgreSQL store: jobs in one table of its own schema, claimed with FOR UPDATE SKIP LOCKED,
 * events over LISTEN/NOTIFY (they reach every process: `sharedEvents`), times from the database
 * clock. Safe for any number of processes on any number of machines sharing one database.
 */
export class PostgresStore implements Store {
  readonly kind = "postgres";
  readonly sharedEvents = true;
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #listener: Listener;
  readonly #channel: string;
  readonly #events = new EventEmitter();
  /** When pruneExpired last deleted ended group-rate windows (0: not yet). */
  #ratesPrunedAt = 0;
  readonly #enqueue: ReturnType<typeof makeEnqueue>;
  readonly #finish: ReturnType<typeof makeFinish>;
  readonly #controls: ReturnType<typeof makeControls>;
  readonly #queries: ReturnType<typeof makeQueries>;
  readonly #schedules: ReturnType<typeof makeSchedules>;
  /** Tags this store's notifications, so its own listener skips them. */
  readonly #origin = randomUUID();
  readonly #fastLaunch: ReturnType<typeof makeFastLaunch>;
  /** Claiming, outcomes, dispatch, heartbeats and the rescuer: what workers drive. */
  readonly #workerOps: PgWorkerOps;
  #listening: Promise<void> | undefined;
  #closed = false;

  constructor(url: string, options: PostgresOptions = {}) {
    const { config, schema } = connectionSettings(url, options);
    this.schema = schema;
    this.#pool = new pg.Pool(config);
    // An idle pooled connection that dies (server restart) must not crash the process.
    this.#pool.on("error", () => undefined);
    this.#channel = channelOf(schema);
    this.#events.setMaxListeners(0);
    this.#listener = new Listener(
      config,
      this.#channel,
      (event) => this.#events.emit("event", event),
      this.#origin,
      options.listenerPingMs === undefined ? {} : { pingMs: options.listenerPingMs },
    );
    const s = schema;
    this.#enqueue = makeEnqueue(s);
    this.#finish = makeFinish(s);
    this.#controls = makeControls(s, this.#finish.cascade);
    this.#queries = makeQueries(s);
    this.#schedules = makeSchedules(s);
    this.#fastLaunch = makeFastLaunch(s);
    const access: PgStoreAccess = {
      pool: this.#pool,
      config,
      schema,
      channel: this.#channel,
      origin: this.#origin,
      isClosed: () => this.#closed,
      guard: () => this.guard(),
      write: (work) => this.write(work),
      read: (text, values) => this.read(text, values),
      tell: (events) => this.tell(events),
    };
    this.#workerOps = new PgWorkerOps(access, this.#finish, options.leaseKeeperMs ?? 120_000);
  }

  /** The LISTEN connection, for tests and operators: reconnects so far. */
  get listenerConnects(): number {
    return this.#listener.connects;
  }

  /** The LISTEN connection, for tests and operators: whether it is up right now. */
  get listening(): boolean {
    return this.#listener.listening;
  }

  private guard(): void {
    if (this.#closed) throw new FerryError(ErrorCode.StoreUnavailable, "the store is closed");
    this.#listening ??= this.#listener.start();
  }

  /** A write transaction whose events are sent inside it (delivered only if it commits). */
  private async write<T>(work: (client: Client, outbox: Outbox) => Promise<T>): Promise<T> {
    this.guard();
    const outbox = new Outbox();
    const result = await inTransaction(this.#pool, async (client) => {
      outbox.clear();
      const result = await work(client, outbox);
      await outbox.send(client, this.#channel, this.#origin);
      return result;
    });
    this.tell(outbox.events());
    return result;
  }

  /** Events for this process's subscribers (other processes hear the notifications). */
  private tell(events: readonly StoreEvent[]): void {
    for (const event of events) this.#events.emit("event", event);
  }

  private async read<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    this.guard();
    return (await query<R>(this.#pool, text, values, true)).rows;
  }

  async migrate(): Promise<number> {
    this.guard();
    const version = await migrate(this.#pool, this.schema);
    await this.#listening;
    return version;
  }

  async now(): Promise<number> {
    return (await this.read<{ n: number }>(`SELECT ${this.schema}.ms_now() AS n`))[0]!.n;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#events.removeAllListeners();
    await this.#workerOps.close();
    await this.#listener.close();
    await this.#pool.end().catch(() => undefined);
  }

  async enqueue(jobs: readonly NewJob[], context: EnqueueContext = {}): Promise<EnqueueResult[]> {
    if (jobs.length === 0) return [];
    if (context.tx === undefined) {
      const job = jobs[0]!;
      if (context.dispatch !== undefined && jobs.length === 1 && canDispatch(job)) {
        return [await this.#workerOps.dispatch(job, context.dispatch)];
      }
      if (jobs.every((j) => j.uniqueKey === null && j.dependsOn.length === 0)) {
        // The common launch: one statement, one round trip.
        this.guard();
        await query(this.#pool, this.#fastLaunch(jobs, this.#channel, this.#origin));
        this.tell([...new Set(jobs.map((j) => j.queue))].map((queue) => ({ type: "enqueued", queue })));
        return jobs.map((j) => ({ id: j.id, deduplicated: false }));
      }
      return this.write((client, outbox) => this.#enqueue(client, jobs, outbox));
    }
    // Inside the caller's transaction: the jobs (and the wake-up) exist only if the caller commits.
    return enqueueInCallerTx(context.tx, jobs, this.#enqueue, this.#channel, () => this.guard());
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    if (!isJobId(id)) return undefined;
    const row = (await this.read<JobRow>(this.#queries.getJobSql, [id]))[0];
    return row === undefined ? undefined : toJobRecord(row);
  }

  async getJobs(ids: readonly string[]): Promise<JobRecord[]> {
    const valid = ids.filter(isJobId);
    if (valid.length === 0) return [];
    return (await this.read<JobRow>(this.#queries.getJobsSql, [valid])).map(toJobRecord);
  }

  async listJobs(request: ListRequest): Promise<JobRecord[]> {
    if (request.afterId !== undefined && !isJobId(request.afterId)) return [];
    const { text, values } = this.#queries.list(request);
    return (await this.read<JobRow>(text, values)).map(toJobRecord);
  }

  async stats(): Promise<StoreStats> {
    const [counts, counters] = await Promise.all([
      this.read<{ queue: string; state: JobState; n: number }>(this.#queries.countsSql),
      this.read<{ name: string; value: number }>(this.#queries.countersSql),
    ]);
    return toStoreStats(counts, counters);
  }

  async consumeResult(id: string): Promise<ConsumeAnswer> {
    if (!isJobId(id)) return { status: "missing" };
    return this.write((client) => this.#controls.consumeResult(client, id));
  }

  async requestCancel(id: string, graceMs: number): Promise<CancelResult> {
    if (!isJobId(id)) return { state: undefined };
    return this.write((client, outbox) => this.#controls.cancel(client, id, graceMs, outbox));
  }

  async cancelMany(filter: JobFilter, graceMs: number): Promise<number> {
    return this.write((client, outbox) => this.#controls.cancelMany(client, filter, graceMs, outbox));
  }

  async detach(id: string): Promise<boolean> {
    if (!isJobId(id)) return false;
    return this.write((client) => this.#controls.detach(client, id));
  }

  async detachMany(filter: JobFilter): Promise<number> {
    return this.write((client) => this.#controls.detachMany(client, filter));
  }

  async retry(id: string): Promise<boolean> {
    if (!isJobId(id)) return false;
    return this.write((client, outbox) => this.#controls.retry(client, id, outbox));
  }

  async purge(request: PurgeRequest): Promise<number> {
    return this.write((client) => this.#controls.purge(client, request));
  }

  async setQueuePaused(queue: string, paused: boolean): Promise<void> {
    await this.write(async (client, outbox) => {
      await client.query(
        `INSERT INTO ${this.schema}.queues (name, paused) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET paused = excluded.paused`,
        [queue, paused],
      );
      if (!paused) outbox.queues.add(queue);
    });
  }

  async setQueueOptions(queue: string, options: QueueOptionsUpdate): Promise<void> {
    const { groupConcurrency, groupRate } = options;
    await this.write(async (client) => {
      if (groupConcurrency !== undefined) {
        await client.query(
          `INSERT INTO ${this.schema}.queues (name, group_concurrency) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET group_concurrency = excluded.group_concurrency`,
          [queue, groupConcurrency],
        );
      }
      if (groupRate !== undefined) {
        await client.query(
          `INSERT INTO ${this.schema}.queues (name, group_rate_limit, group_rate_period_ms) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET group_rate_limit = excluded.group_rate_limit,
             group_rate_period_ms = excluded.group_rate_period_ms`,
          [queue, groupRate?.limit ?? null, groupRate?.periodMs ?? null],
        );
      }
    });
  }

  async listQueues(): Promise<QueueInfo[]> {
    return (await this.read<QueueRow>(`SELECT * FROM ${this.schema}.queues ORDER BY name`)).map(toQueueInfo);
  }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    return this.#workerOps.claim(request);
  }

  async finish(outcomes: readonly Outcome[]): Promise<boolean[]> {
    return this.#workerOps.finish(outcomes);
  }

  async heartbeat(
    worker: WorkerInfo,
    leases: readonly LeaseRef[],
    leaseMs: number,
  ): Promise<HeartbeatResult> {
    return this.#workerOps.heartbeat(worker, leases, leaseMs);
  }

  async setProgress(lease: LeaseRef, progress: Progress): Promise<boolean> {
    return this.write(async (client, outbox) => {
      const done = await client.query(
        `UPDATE ${this.schema}.jobs SET progress = $1 WHERE id = $2 AND fence = $3 AND state = 'running'`,
        [progress, lease.id, lease.fence],
      );
      if ((done.rowCount ?? 0) === 0) return false;
      outbox.changed.push(lease.id);
      return true;
    });
  }

  async rescueExpired(
    workerTtlMs: number,
  ): Promise<{ readonly requeued: number; readonly failed: number; readonly cancelled: number }> {
    return this.#workerOps.rescueExpired(workerTtlMs);
  }

  async pruneExpired(limit: number): Promise<number> {
    if (Date.now() - this.#ratesPrunedAt >= RATE_PRUNE_EVERY_MS) {
      this.#ratesPrunedAt = Date.now();
      await this.write((client) => client.query(this.#controls.pruneEndedRatesSql, [limit]));
    }
    if ((await this.read(this.#controls.anyExpiredSql)).length === 0) return 0;
    return this.write((client) => this.#controls.pruneExpired(client, limit));
  }

  async removeWorker(workerId: string): Promise<void> {
    this.#workerOps.forget(workerId);
    await this.write((client) =>
      client.query(`DELETE FROM ${this.schema}.workers WHERE id = $1`, [workerId]),
    );
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return (
      await this.read<Parameters<typeof toWorkerInfo>[0]>(
        `SELECT * FROM ${this.schema}.workers ORDER BY started_at`,
      )
    ).map(toWorkerInfo);
  }

  async upsertSchedule(schedule: ScheduleInput): Promise<ScheduleRecord> {
    return this.write((client) => this.#schedules.upsert(client, schedule));
  }

  async getSchedule(id: string): Promise<ScheduleRecord | undefined> {
    const row = (await this.read<ScheduleRow>(this.#schedules.getSql, [id]))[0];
    return row === undefined ? undefined : toScheduleRecord(row);
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return (await this.read<ScheduleRow>(this.#schedules.listSql)).map(toScheduleRecord);
  }

  async updateSchedule(id: string, patch: SchedulePatch): Promise<ScheduleRecord | undefined> {
    return this.write((client) => this.#schedules.update(client, id, patch));
  }

  async deleteSchedule(id: string): Promise<boolean> {
    return this.write(
      async (client) => ((await client.query(this.#schedules.deleteSql, [id])).rowCount ?? 0) > 0,
    );
  }

  async countActive(owner: string, limit: number): Promise<number> {
    const [row] = await this.read<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT 1 FROM ${this.schema}.jobs
         WHERE owner = $1 AND state IN ('scheduled', 'queued', 'running') LIMIT $2) AS active`,
      [owner, limit],
    );
    return Number(row?.n ?? 0);
  }

  async readAccess(): Promise<AccessDocument | undefined> {
    const [row] = await this.read<{ revision: string; data: Buffer }>(
      `SELECT revision, data FROM ${this.schema}.access WHERE id = 1`,
    );
    return row === undefined ? undefined : { revision: Number(row.revision), data: new Uint8Array(row.data) };
  }

  async writeAccess(data: Uint8Array, expectedRevision: number): Promise<number | null> {
    return this.write(async (client) => {
      const changed =
        expectedRevision === 0
          ? await client.query(
              `INSERT INTO ${this.schema}.access (id, revision, data) VALUES (1, 1, $1) ON CONFLICT (id) DO NOTHING`,
              [Buffer.from(data)],
            )
          : await client.query(
              `UPDATE ${this.schema}.access SET revision = revision + 1, data = $1 WHERE id = 1 AND revision = $2`,
              [Buffer.from(data), expectedRevision],
            );
      return changed.rowCount === 1 ? expectedRevision + 1 : null;
    });
  }

  async fireDueSchedules(fire: (schedule: ScheduleRecord, now: number) => ScheduleFiring): Promise<number> {
    if ((await this.read(this.#schedules.anyDueSql)).length === 0) return 0;
    return this.write(async (client, outbox) => {
      const { firings } = await this.#schedules.fireDue(client, fire);
      if (firings.length > 0)
        await this.#enqueue(
          client,
          firings.map((f) => f.job),
          outbox,
        );
      return firings.length;
    });
  }

  async markWatched(ids: readonly string[]): Promise<void> {
    const valid = ids.filter(isJobId);
    if (valid.length === 0) return;
    this.guard();
    await query(
      this.#pool,
      `UPDATE ${this.schema}.jobs SET watched = true WHERE id = ANY($1::uuid[]) AND NOT watched`,
      [valid],
    );
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.guard();
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
