/**
 * The NATS JetStream store (design: docs/stores.md, "The NATS JetStream store"). Job records live
 * in a KV bucket and change only by compare-and-set; a work-queue stream carries one message per
 * dispatch of a job, pulled by durable consumers per (queue, priority band, handler); events
 * between processes travel on a core NATS subject.
 *
 * This class only wires the operations together, each in its own module around the shared context
 * (context.ts): launching (enqueue.ts), claiming (claim.ts), finishing (finish.ts), leases
 * (leases.ts), the owner's controls (controls.ts), reading (queries.ts), queues and workers
 * (registry.ts), rescue and pruning (housekeeping.ts), schedules (schedules.ts) and the access
 * document (access.ts).
 */

import type { Subscription } from "@nats-io/transport-node";
import type { Progress } from "../../core/job.js";
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
import { readAccess, writeAccess } from "./access.js";
import { makeClaim } from "./claim.js";
import { createContext, type NatsContext, type NatsResources } from "./context.js";
import { type ConsumeAnswer, makeControls } from "./controls.js";
import { Dispatcher } from "./dispatch.js";
import { makeEnqueue } from "./enqueue.js";
import { makeFinish } from "./finish.js";
import { makeHousekeeping } from "./housekeeping.js";
import { keepDispatchesAlive, makeLeases } from "./leases.js";
import { makeQueries } from "./queries.js";
import { makeRegistry } from "./registry.js";
import { enqueueOnce, NatsSchedules } from "./schedules.js";

/** The operations, each given the context and the operations it calls on (no module imports another's instance). */
function makeParts(ctx: NatsContext) {
  const dispatcher = new Dispatcher(ctx);
  const finish = makeFinish(ctx, dispatcher);
  return {
    claim: makeClaim(ctx, finish),
    enqueue: makeEnqueue(ctx, dispatcher),
    finish,
    leases: makeLeases(ctx),
    controls: makeControls(ctx, dispatcher, finish),
    queries: makeQueries(ctx),
    registry: makeRegistry(ctx),
    housekeeping: makeHousekeeping(ctx, dispatcher, finish),
  };
}

export class NatsStore implements Store {
  readonly kind = "nats";
  readonly sharedEvents = true;
  readonly #ctx: NatsContext;
  readonly #parts: ReturnType<typeof makeParts>;
  readonly #schedules: NatsSchedules;
  readonly #keepAlive: NodeJS.Timeout;
  #sub: Subscription | undefined;
  #advisories: Subscription | undefined;

  constructor(resources: NatsResources, prefix: string, ackWaitMs: number, leaseKeeperMs = 120_000) {
    this.#ctx = createContext(resources, prefix, leaseKeeperMs);
    this.#parts = makeParts(this.#ctx);
    // One instance for the store's life: its identity lets it retry its own failed enqueues at once.
    this.#schedules = new NatsSchedules(resources.meta, enqueueOnce(this));
    this.#keepAlive = keepDispatchesAlive(this.#ctx, ackWaitMs);
  }

  // --- lifecycle -------------------------------------------------------------------------------

  async migrate(): Promise<number> {
    if (this.#sub === undefined) {
      this.#sub = this.#ctx.events.listen();
      void this.#parts.claim.wakeOnReconnect();
      this.#advisories = this.#ctx.r.nc.subscribe(
        `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.#ctx.names.workStream}.*`,
        {
          callback: (err, msg) => {
            if (err === null) void this.#parts.housekeeping.onMaxDeliveries(msg.data).catch(() => undefined);
          },
        },
      );
    }
    return 1;
  }

  async now(): Promise<number> {
    return Date.now();
  }

  async close(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.closed) return;
    ctx.closed = true;
    ctx.counters.stop();
    clearInterval(this.#keepAlive);
    this.#parts.claim.stopWaking();
    await Promise.all([ctx.counters.flush(), ctx.expiry.flush()]).catch(() => undefined);
    ctx.expiry.close();
    await ctx.holders.close().catch(() => undefined);
    await ctx.keeper?.stop();
    this.#sub?.unsubscribe();
    this.#advisories?.unsubscribe();
    this.#parts.claim.close();
    ctx.events.removeAllListeners();
    await ctx.r.close();
  }

  // --- launching and reading ---------------------------------------------------------------------

  enqueue(jobs: readonly NewJob[], context: EnqueueContext = {}): Promise<EnqueueResult[]> {
    return this.#parts.enqueue(jobs, context);
  }

  getJob(id: string): Promise<JobRecord | undefined> {
    return this.#parts.queries.getJob(id);
  }

  getJobs(ids: readonly string[]): Promise<JobRecord[]> {
    return this.#parts.queries.getJobs(ids);
  }

  listJobs(request: ListRequest): Promise<JobRecord[]> {
    return this.#parts.queries.listJobs(request);
  }

  /** Reads the owner's records through the index: the cost grows with the jobs it has stored. */
  countActive(owner: string, limit: number): Promise<number> {
    return this.#parts.queries.countActive(owner, limit);
  }

  stats(): Promise<StoreStats> {
    return this.#parts.queries.stats();
  }

  // --- the owner's controls --------------------------------------------------------------------

  consumeResult(id: string): Promise<ConsumeAnswer> {
    return this.#parts.controls.consumeResult(id);
  }

  requestCancel(id: string, graceMs: number): Promise<CancelResult> {
    return this.#parts.controls.requestCancel(id, graceMs);
  }

  cancelMany(filter: JobFilter, graceMs: number): Promise<number> {
    return this.#parts.controls.cancelMany(filter, graceMs);
  }

  detach(id: string): Promise<boolean> {
    return this.#parts.controls.detach(id);
  }

  detachMany(filter: JobFilter): Promise<number> {
    return this.#parts.controls.detachMany(filter);
  }

  retry(id: string): Promise<boolean> {
    return this.#parts.controls.retry(id);
  }

  purge(request: PurgeRequest): Promise<number> {
    return this.#parts.controls.purge(request);
  }

  // --- queues and workers ----------------------------------------------------------------------

  setQueuePaused(queue: string, paused: boolean): Promise<void> {
    return this.#parts.registry.setPaused(queue, paused);
  }

  setQueueOptions(queue: string, options: QueueOptionsUpdate): Promise<void> {
    return this.#parts.registry.setOptions(queue, options);
  }

  listQueues(): Promise<QueueInfo[]> {
    return this.#parts.registry.listQueues();
  }

  removeWorker(workerId: string): Promise<void> {
    return this.#parts.registry.removeWorker(workerId);
  }

  listWorkers(): Promise<WorkerInfo[]> {
    return this.#parts.registry.listWorkers();
  }

  // --- workers' calls --------------------------------------------------------------------------

  claim(request: ClaimRequest): Promise<ClaimResult> {
    return this.#parts.claim.claim(request);
  }

  finish(outcomes: readonly Outcome[]): Promise<boolean[]> {
    return this.#parts.finish.finish(outcomes);
  }

  heartbeat(worker: WorkerInfo, leases: readonly LeaseRef[], leaseMs: number): Promise<HeartbeatResult> {
    return this.#parts.leases.heartbeat(worker, leases, leaseMs);
  }

  setProgress(lease: LeaseRef, progress: Progress): Promise<boolean> {
    return this.#parts.leases.setProgress(lease, progress);
  }

  // --- housekeeping ----------------------------------------------------------------------------

  rescueExpired(
    workerTtlMs: number,
  ): Promise<{ readonly requeued: number; readonly failed: number; readonly cancelled: number }> {
    return this.#parts.housekeeping.rescueExpired(workerTtlMs);
  }

  pruneExpired(limit: number): Promise<number> {
    return this.#parts.housekeeping.pruneExpired(limit);
  }

  // --- schedules (schedules.ts) --------------------------------------------------------------

  upsertSchedule(schedule: ScheduleInput): Promise<ScheduleRecord> {
    return this.#schedules.upsert(schedule, Date.now());
  }
  getSchedule(id: string): Promise<ScheduleRecord | undefined> {
    return this.#schedules.get(id);
  }
  listSchedules(): Promise<ScheduleRecord[]> {
    return this.#schedules.list();
  }
  updateSchedule(id: string, patch: SchedulePatch): Promise<ScheduleRecord | undefined> {
    return this.#schedules.update(id, patch);
  }
  deleteSchedule(id: string): Promise<boolean> {
    return this.#schedules.delete(id);
  }
  fireDueSchedules(fire: (schedule: ScheduleRecord, now: number) => ScheduleFiring): Promise<number> {
    return this.#schedules.fireDue(fire, Date.now());
  }

  // --- access control (access.ts) --------------------------------------------------------------

  readAccess(): Promise<AccessDocument | undefined> {
    return readAccess(this.#ctx);
  }

  writeAccess(data: Uint8Array, expectedRevision: number): Promise<number | null> {
    return writeAccess(this.#ctx, data, expectedRevision);
  }

  // --- events (events.ts) ----------------------------------------------------------------------

  async markWatched(ids: readonly string[]): Promise<void> {
    await Promise.all(
      ids.map((id) =>
        this.#ctx.repo.change(id, (job) => (job.watched ? undefined : { ...job, watched: true })),
      ),
    );
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    return this.#ctx.events.subscribe(listener);
  }
}
