import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import pg from "pg";
import { ErrorCode, FerryError } from "../../core/errors.js";
import { RATE_PRUNE_EVERY_MS } from "../../core/group-rate.js";
import type { JobState, Progress } from "../../core/job.js";
import { canDispatch } from "../dispatch.js";
import { rescueOutcome } from "../rescue.js";
import {
  byClaimOrder,
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
  DispatchOffer,
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
import { makeClaim, makeLeases, toPgClaimedJob } from "./claim.js";
import {
  type Client,
  connectionSettings,
  inTransaction,
  migrate,
  type PostgresOptions,
  query,
  storeError,
} from "./connection.js";
import { type ConsumeAnswer, makeControls, makeQueries } from "./controls.js";
import { makeEnqueue } from "./enqueue.js";
import {
  type DispatchRow,
  type FastRoundRow,
  makeDispatchLaunch,
  makeFastLaunch,
  makeFastRound,
} from "./fast-path.js";
import { makeFinish } from "./finish.js";
import { isJobId } from "./job-id.js";
import { LeaseKeeper } from "./lease-keeper.js";
import { channelOf, Listener, Outbox } from "./notifier.js";
import { makeSchedules } from "./schedules.js";

/** What `tx` must offer: a `pg` Client or PoolClient inside the caller's open transaction. */
interface Queryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

const isQueryable = (value: unknown): value is Queryable =>
  typeof (value as { query?: unknown } | null)?.query === "function";

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
  readonly #claim: ReturnType<typeof makeClaim>;
  readonly #leases: ReturnType<typeof makeLeases>;
  readonly #finish: ReturnType<typeof makeFinish>;
  readonly #controls: ReturnType<typeof makeControls>;
  readonly #queries: ReturnType<typeof makeQueries>;
  readonly #schedules: ReturnType<typeof makeSchedules>;
  readonly #config: pg.PoolConfig;
  /** Tags this store's notifications, so its own listener skips them. */
  readonly #origin = randomUUID();
  readonly #fastRound: ReturnType<typeof makeFastRound>;
  readonly #fastLaunch: ReturnType<typeof makeFastLaunch>;
  readonly #dispatchLaunch: ReturnType<typeof makeDispatchLaunch>;
  #listening: Promise<void> | undefined;
  #keeper: LeaseKeeper | undefined;
  readonly #stallMs: number;
  #closed = false;

  constructor(url: string, options: PostgresOptions = {}) {
    const { config, schema } = connectionSettings(url, options);
    this.schema = schema;
    this.#config = config;
    this.#stallMs = options.leaseKeeperMs ?? 120_000;
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
    this.#claim = makeClaim(s);
    this.#leases = makeLeases(s);
    this.#finish = makeFinish(s);
    this.#controls = makeControls(s, this.#finish.cascade);
    this.#queries = makeQueries(s);
    this.#schedules = makeSchedules(s);
    this.#fastRound = makeFastRound(s);
    this.#fastLaunch = makeFastLaunch(s);
    this.#dispatchLaunch = makeDispatchLaunch(s);
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
    await this.#keeper?.stop();
    await this.#listener.close();
    await this.#pool.end().catch(() => undefined);
  }

  async enqueue(jobs: readonly NewJob[], context: EnqueueContext = {}): Promise<EnqueueResult[]> {
    if (jobs.length === 0) return [];
    if (context.tx === undefined) {
      const job = jobs[0]!;
      if (context.dispatch !== undefined && jobs.length === 1 && canDispatch(job)) {
        return [await this.dispatch(job, context.dispatch)];
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
    if (!isQueryable(context.tx)) {
      throw new FerryError(
        ErrorCode.InvalidArgument,
        "tx must be a pg Client or PoolClient in an open transaction",
      );
    }
    if (context.tx instanceof pg.Pool) {
      throw new FerryError(
        ErrorCode.InvalidArgument,
        "tx must be one client in an open transaction, not a Pool",
      );
    }
    this.guard();
    const client = context.tx as unknown as Client;
    // The savepoint proves a transaction is open (else 25P01), and a failure here leaves the
    // caller's transaction usable instead of aborted.
    try {
      await client.query("SAVEPOINT ferry_enqueue");
    } catch (error) {
      if ((error as { code?: unknown }).code === "25P01") {
        throw new FerryError(
          ErrorCode.InvalidArgument,
          "tx must be a client inside an open transaction (BEGIN first)",
        );
      }
      throw storeError(error);
    }
    const outbox = new Outbox();
    try {
      const results = await this.#enqueue(client, jobs, outbox);
      await outbox.send(client, this.#channel);
      await client.query("RELEASE SAVEPOINT ferry_enqueue");
      return results;
    } catch (error) {
      await client.query("ROLLBACK TO SAVEPOINT ferry_enqueue").catch(() => undefined);
      throw storeError(error);
    }
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
    const finished = request.finished ?? [];
    const result =
      request.queues.length === 1 && finished.every((o) => o.kind === "completed")
        ? await this.fastRound(request, finished as Extract<Outcome, { kind: "completed" }>[])
        : await this.slowRound(request, finished);
    if (result.jobs.length > 0) {
      this.#keeper?.keepLeases(
        request.workerId,
        result.jobs,
        request.leaseMs,
        Date.now() + this.#stallMs,
        true,
      );
    }
    return result;
  }

  /** One plain job written already claimed by a worker of this process (see fast-path.ts). */
  private async dispatch(job: NewJob, offer: DispatchOffer): Promise<EnqueueResult> {
    this.guard();
    const statement = this.#dispatchLaunch(job, offer, this.#channel, this.#origin);
    const row = (await query<DispatchRow>(this.#pool, statement)).rows[0]!;
    if (row.state === "queued") {
      // Paused or group-limited queue: stored as a plain launch would, announced the same way.
      this.tell([{ type: "enqueued", queue: job.queue }]);
      return { id: job.id, deduplicated: false };
    }
    const claimed = toPgClaimedJob(row);
    this.#keeper?.keepLeases(offer.workerId, [claimed], offer.leaseMs, Date.now() + this.#stallMs, true);
    return { id: job.id, deduplicated: false, claimed };
  }

  /** One statement: completions and the claim of one queue (see fast-path.ts). */
  private async fastRound(
    request: ClaimRequest,
    finished: readonly Extract<Outcome, { kind: "completed" }>[],
  ): Promise<ClaimResult> {
    this.guard();
    const statement = this.#fastRound(
      finished,
      request.queues[0]!,
      request.handlers,
      request.handlers.length === 0 ? 0 : request.limit,
      request.workerId,
      request.leaseMs,
      this.#channel,
      this.#origin,
    );
    const rows = (await query<FastRoundRow>(this.#pool, statement)).rows;
    const done = new Set<string>();
    const claimed: FastRoundRow[] = [];
    const events: StoreEvent[] = [];
    let gateClosed = false;
    for (const row of rows) {
      if (row.kind === "claimed") claimed.push(row);
      else if (row.kind === "done") done.add(row.id);
      else if (row.kind === "ready") events.push({ type: "enqueued", queue: row.queue });
      else gateClosed = row.gate_closed === true;
    }
    for (const id of done) events.push({ type: "changed", id });
    for (const row of claimed) events.push({ type: "changed", id: row.id });
    this.tell(events);
    let applied = finished.map((o) => done.has(o.id));
    const left = finished.filter((o) => !done.has(o.id));
    if (left.length > 0) {
      // Fenced off, or with dependents: the general path tells which, and runs the cascade.
      const again = await this.finish(left);
      const byId = new Map(left.map((o, i) => [o.id, again[i]!]));
      applied = finished.map((o) => done.has(o.id) || byId.get(o.id) === true);
    }
    // Paused or group-limited: the general path knows what to do (it claims nothing if paused).
    if (gateClosed) return { jobs: (await this.slowRound(request, [])).jobs, applied };
    claimed.sort(byClaimOrder);
    return { jobs: claimed.map(toPgClaimedJob), applied };
  }

  /** The general path: a transaction of several statements, for everything else. */
  private async slowRound(request: ClaimRequest, finished: readonly Outcome[]): Promise<ClaimResult> {
    return this.write(async (client, outbox) => {
      const applied = finished.length === 0 ? [] : await this.#finish.finish(client, finished, outbox);
      return { jobs: await this.#claim(client, request, outbox), applied };
    });
  }

  async finish(outcomes: readonly Outcome[]): Promise<boolean[]> {
    if (outcomes.length === 0) return [];
    return this.write((client, outbox) => this.#finish.finish(client, outcomes, outbox));
  }

  async heartbeat(
    worker: WorkerInfo,
    leases: readonly LeaseRef[],
    leaseMs: number,
  ): Promise<HeartbeatResult> {
    const answer = await this.write((client) => this.#leases.heartbeat(client, worker, leases, leaseMs));
    // Workers heartbeat; bare Store users don't, and get no thread.
    if (this.#stallMs > 0 && !this.#closed) {
      this.#keeper ??= new LeaseKeeper(this.#config, this.schema);
      const lost = new Set(answer.lost);
      const kept = leases.filter((l) => !lost.has(l.id));
      this.#keeper.keepLeases(worker.id, kept, leaseMs, Date.now() + this.#stallMs);
    }
    return answer;
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
    // Housekeeping runs in every process each few seconds: look before opening a transaction.
    const any = await this.read<{ any: boolean }>(this.#leases.anyExpiredSql, [workerTtlMs]);
    if (!any[0]?.any) return { requeued: 0, failed: 0, cancelled: 0 };
    return this.write(async (client, outbox) => {
      const tally = { requeued: 0, failed: 0, cancelled: 0 };
      const outcomes: Outcome[] = [];
      const expired = await client.query<{
        id: string;
        fence: number;
        attempts: number;
        max_attempts: number;
        cancel_requested: boolean;
        policy: string | null;
        error: string | null;
      }>(this.#leases.expiredSql);
      for (const row of expired.rows) {
        outcomes.push(
          rescueOutcome(
            {
              ...row,
              maxAttempts: row.max_attempts,
              cancelRequested: row.cancel_requested,
              lastError: row.error,
            },
            tally,
          ),
        );
      }
      if (outcomes.length > 0) await this.#finish.finish(client, outcomes, outbox);
      await client.query(
        `DELETE FROM ${this.schema}.workers WHERE last_heartbeat_at < ${this.schema}.ms_now() - $1`,
        [workerTtlMs],
      );
      return tally;
    });
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
    this.#keeper?.forget(workerId);
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
