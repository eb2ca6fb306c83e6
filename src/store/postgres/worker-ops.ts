import type pg from "pg";
import { rescueOutcome } from "../rescue.js";
import { byClaimOrder } from "../rows.js";
import type {
  ClaimRequest,
  ClaimResult,
  DispatchOffer,
  EnqueueResult,
  HeartbeatResult,
  LeaseRef,
  NewJob,
  Outcome,
  StoreEvent,
  WorkerInfo,
} from "../store.js";
import { makeClaim, makeLeases, toPgClaimedJob } from "./claim.js";
import { type Client, query } from "./connection.js";
import { type DispatchRow, type FastRoundRow, makeDispatchLaunch, makeFastRound } from "./fast-path.js";
import type { makeFinish } from "./finish.js";
import { LeaseKeeper } from "./lease-keeper.js";
import type { Outbox } from "./notifier.js";

/** What the worker's operations use of the store holding them (postgres-store.ts). */
export interface PgStoreAccess {
  readonly pool: pg.Pool;
  readonly config: pg.PoolConfig;
  readonly schema: string;
  readonly channel: string;
  /** Tags this store's notifications, so its own listener skips them. */
  readonly origin: string;
  isClosed(): boolean;
  /** Throws once the store is closed; starts the listener on first use. */
  guard(): void;
  /** A write transaction whose events are sent inside it (delivered only if it commits). */
  write<T>(work: (client: Client, outbox: Outbox) => Promise<T>): Promise<T>;
  read<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  /** Events for this process's subscribers. */
  tell(events: readonly StoreEvent[]): void;
}

/**
 * The PostgreSQL store's side that workers drive: claiming (one statement on the fast path, a
 * transaction otherwise), recording outcomes, direct dispatch, heartbeats with the lease keeper
 * thread behind them, and the rescuer. The launches, reads and owner's controls stay in the facade.
 */
export class PgWorkerOps {
  readonly #claim: ReturnType<typeof makeClaim>;
  readonly #leases: ReturnType<typeof makeLeases>;
  readonly #fastRound: ReturnType<typeof makeFastRound>;
  readonly #dispatchLaunch: ReturnType<typeof makeDispatchLaunch>;
  #keeper: LeaseKeeper | undefined;

  constructor(
    private readonly store: PgStoreAccess,
    private readonly outcomes: ReturnType<typeof makeFinish>,
    /** How long a stalled worker's leases are kept by the thread (0: no thread). */
    private readonly stallMs: number,
  ) {
    const s = store.schema;
    this.#claim = makeClaim(s);
    this.#leases = makeLeases(s);
    this.#fastRound = makeFastRound(s);
    this.#dispatchLaunch = makeDispatchLaunch(s);
  }

  /** A worker left: its leases are no longer kept. */
  forget(workerId: string): void {
    this.#keeper?.forget(workerId);
  }

  async close(): Promise<void> {
    await this.#keeper?.stop();
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
        Date.now() + this.stallMs,
        true,
      );
    }
    return result;
  }

  /** One plain job written already claimed by a worker of this process (see fast-path.ts). */
  async dispatch(job: NewJob, offer: DispatchOffer): Promise<EnqueueResult> {
    this.store.guard();
    const statement = this.#dispatchLaunch(job, offer, this.store.channel, this.store.origin);
    const row = (await query<DispatchRow>(this.store.pool, statement)).rows[0]!;
    if (row.state === "queued") {
      // Paused or group-limited queue: stored as a plain launch would, announced the same way.
      this.store.tell([{ type: "enqueued", queue: job.queue }]);
      return { id: job.id, deduplicated: false };
    }
    const claimed = toPgClaimedJob(row);
    this.#keeper?.keepLeases(offer.workerId, [claimed], offer.leaseMs, Date.now() + this.stallMs, true);
    return { id: job.id, deduplicated: false, claimed };
  }

  /** One statement: completions and the claim of one queue (see fast-path.ts). */
  private async fastRound(
    request: ClaimRequest,
    finished: readonly Extract<Outcome, { kind: "completed" }>[],
  ): Promise<ClaimResult> {
    this.store.guard();
    const statement = this.#fastRound(
      finished,
      request.queues[0]!,
      request.handlers,
      request.handlers.length === 0 ? 0 : request.limit,
      request.workerId,
      request.leaseMs,
      this.store.channel,
      this.store.origin,
    );
    const rows = (await query<FastRoundRow>(this.store.pool, statement)).rows;
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
    this.store.tell(events);
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
    return this.store.write(async (client, outbox) => {
      const applied = finished.length === 0 ? [] : await this.outcomes.finish(client, finished, outbox);
      return { jobs: await this.#claim(client, request, outbox), applied };
    });
  }

  async finish(outcomes: readonly Outcome[]): Promise<boolean[]> {
    if (outcomes.length === 0) return [];
    return this.store.write((client, outbox) => this.outcomes.finish(client, outcomes, outbox));
  }

  async heartbeat(
    worker: WorkerInfo,
    leases: readonly LeaseRef[],
    leaseMs: number,
  ): Promise<HeartbeatResult> {
    const answer = await this.store.write((client) =>
      this.#leases.heartbeat(client, worker, leases, leaseMs),
    );
    // Workers heartbeat; bare Store users don't, and get no thread.
    if (this.stallMs > 0 && !this.store.isClosed()) {
      this.#keeper ??= new LeaseKeeper(this.store.config, this.store.schema);
      const lost = new Set(answer.lost);
      const kept = leases.filter((l) => !lost.has(l.id));
      this.#keeper.keepLeases(worker.id, kept, leaseMs, Date.now() + this.stallMs);
    }
    return answer;
  }

  async rescueExpired(
    workerTtlMs: number,
  ): Promise<{ readonly requeued: number; readonly failed: number; readonly cancelled: number }> {
    // Housekeeping runs in every process each few seconds: look before opening a transaction.
    const any = await this.store.read<{ any: boolean }>(this.#leases.anyExpiredSql, [workerTtlMs]);
    if (!any[0]?.any) return { requeued: 0, failed: 0, cancelled: 0 };
    return this.store.write(async (client, outbox) => {
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
      if (outcomes.length > 0) await this.outcomes.finish(client, outcomes, outbox);
      await client.query(
        `DELETE FROM ${this.store.schema}.workers WHERE last_heartbeat_at < ${this.store.schema}.ms_now() - $1`,
        [workerTtlMs],
      );
      return tally;
    });
  }
}
