/**
 * The NATS JetStream store (design: docs/stores.md, "The NATS JetStream store"). Job records live
 * in a KV bucket and change only by compare-and-set; a work-queue stream carries one message per
 * dispatch of a job, pulled by durable consumers per (queue, priority band, handler); events
 * between processes travel on a core NATS subject.
 *
 * Slice 1 (issue 4): launching, claiming, finishing, leases, cancel, results, queues, workers and
 * events. Listing, counts, rescue and pruning still scan the jobs bucket, and a launchMany that
 * dies half-way leaves the jobs written so far: both are the next slice (journal and indexes).
 */

import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { KV, KvEntry } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { ErrorCode, invalidArgument } from "../../core/errors.js";
import { isFinished, type JobState, type Progress } from "../../core/job.js";
import { canDispatch } from "../dispatch.js";
import type { LeaseThread } from "../lease-thread.js";
import { rescueOutcome, tallyParents } from "../rescue.js";
import { type CounterDelta, noCounts, toStoreStats } from "../stats.js";
import type {
  AccessDocument,
  CancelResult,
  ClaimedJob,
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
import { checkParent } from "../tenancy.js";
import { CoalescedWrite } from "./coalesced-write.js";
import { ExpiryLog } from "./expiry-log.js";
import { GroupRates } from "./group-rates.js";
import { GroupSlots } from "./group-slots.js";
import { HeldRegistry } from "./held-registry.js";
import { encodeJob, hashText, type StoredJob, toClaimedJob, toJobRecord } from "./job-codec.js";
import { JobIndex } from "./job-index.js";
import { isRevisionConflict, JobRepo, type Versioned } from "./job-repo.js";
import type { JsRequests } from "./js-requests.js";
import { listKeys } from "./kv-keys.js";
import { BANDS, bandOf, type NatsNames, natsNames, uniqueKeyId } from "./names.js";
import { JOB_HEADER, Puller, REVISION_HEADER, type WorkMessage } from "./pull.js";
import { enqueueOnce, NatsSchedules } from "./schedules.js";
import { applyOutcome, claimed, isWaiting, parentFinished, retentionEnd } from "./transitions.js";
import { WakeTimers } from "./wake-timers.js";

/** What the store needs from a connection (see connection.ts). */
export interface NatsResources {
  readonly nc: NatsConnection;
  /** The hot requests (writes, confirmed acks) without the client's per-request cost. */
  readonly requests: JsRequests;
  readonly jobs: KV;
  /** A thread that renews this process's leases while its event loop stalls (lease-keeper.ts). */
  startLeaseKeeper(): LeaseThread;
  /** Compare-and-set of one job record at `revision` (0: must not exist); answers the new revision. */
  writeJob(id: string, record: Uint8Array, revision: number): Promise<number>;
  readonly unique: KV;
  /** The listing index (job-index.ts). */
  readonly index: KV;
  readonly meta: KV;
  /** Makes sure the durable consumer of one (queue, band, handler) exists. */
  ensureConsumer(name: string, filterSubject: string): Promise<void>;
  /** The job a work message names, by its stream sequence (undefined when it is gone). */
  jobIdAt(sequence: number): Promise<string | undefined>;
  deleteMessage(sequence: number): Promise<void>;
  /** Messages in the work stream per subject matching `filter` (waiting or delivered, not acked). */
  messagesBySubject(filter: string): Promise<Readonly<Record<string, number>>>;
  publish(
    subject: string,
    data: Uint8Array,
    options: { msgID: string; headers: Record<string, string> },
  ): Promise<void>;
  close(): Promise<void>;
}

/** Records read at most per round trip by lists and bulk controls. */
const LIST_CHUNK = 256;
/** A dispatch of a job whose group is full is looked at again after this. */
const GROUP_FULL_RETRY_MS = 250;
/** A dispatch pulled from a queue paused meanwhile is looked at again after this. */
const PAUSED_RETRY_MS = 1_000;
/** A dispatch whose claim failed midway (NATS did not answer) is looked at again after this. */
const FAILED_TAKE_RETRY_MS = 1_000;
/** How often one process (any) scans every record to rescue and prune what the indexes missed. */
const SWEEP_MS = 3_600_000;
/** A dispatch whose record is not found is looked at again after this, up to this many times. */
const MISSING_RECORD_RETRY_MS = 1_000;
const MISSING_RECORD_DELIVERIES = 5;
/** Longest single nak delay: a job due later is looked at again after this. */
const MAX_NAK_MS = 3_600_000;
/** The daemon's access document (users, roles, token hashes) in the meta bucket. */
const ACCESS_KEY = "access";

interface Held {
  readonly message: WorkMessage | undefined;
  known: Versioned;
}

interface WireEvent {
  o: string;
  e?: string[];
  c?: string[];
  x?: [string, number];
}

const encoder = new TextEncoder();

export class NatsStore implements Store {
  readonly kind = "nats";
  readonly sharedEvents = true;
  readonly #r: NatsResources;
  readonly #names: NatsNames;
  readonly #repo: JobRepo;
  readonly #puller: Puller;
  readonly #slots: GroupSlots;
  readonly #rates: GroupRates;
  readonly #schedules: NatsSchedules;
  readonly #events = new EventEmitter();
  readonly #origin = randomUUID();
  readonly #held = new Map<string, Held>();
  /** Jobs whose claim is being written: listed as held already (a rescuer checks the record). */
  readonly #claiming = new Set<string>();
  /** Per queue: the subjects' message counts from the last claim round, less what it pulled. */
  readonly #backlog = new Map<string, Record<string, number>>();
  /** Per queue: how many launch announcements this process has seen (a new one voids #backlog). */
  readonly #launchesSeen = new Map<string, number>();
  /**
   * Jobs being launched (their record written, their dispatch not yet): listed as held the same
   * way, so that if this process dies between the two writes a rescuer dispatches them.
   */
  readonly #launching = new Set<string>();
  /** Direct-dispatch launches whose answer was lost: listed as held until a rescue ends them. */
  readonly #unheard = new Set<string>();
  readonly #consumers = new Map<string, Promise<void>>();
  readonly #counts: Required<CounterDelta> = noCounts();
  #countsDirty: NodeJS.Timeout | undefined;
  readonly #countsWrite: CoalescedWrite;
  readonly #expiry: ExpiryLog;
  readonly #holders: HeldRegistry;
  #sub: Subscription | undefined;
  #advisories: Subscription | undefined;
  /** The queue of each consumer this store pulled from. */
  readonly #consumerQueues = new Map<string, string>();
  /** Queues this process's workers take from: woken after a reconnect. */
  readonly #queuesClaimed = new Set<string>();
  #closed = false;
  readonly #keepAlive: NodeJS.Timeout;
  readonly #index: JobIndex;
  /** Renews leases while the event loop stalls; started by the first heartbeat (workers only). */
  #keeper: LeaseThread | undefined;
  /** How long the keeper renews after the last heartbeat: a process stuck longer loses its jobs. */
  readonly #stallMs: number;
  readonly #wakeTimers = new WakeTimers((queue) => this.#events.emit("event", { type: "enqueued", queue }));

  constructor(resources: NatsResources, prefix: string, ackWaitMs: number, leaseKeeperMs = 120_000) {
    this.#r = resources;
    this.#stallMs = leaseKeeperMs;
    this.#names = natsNames(prefix);
    this.#expiry = new ExpiryLog(resources.meta, this.#origin);
    this.#index = new JobIndex(resources.index);
    this.#repo = new JobRepo(resources.jobs, resources.writeJob, (job) => {
      if (isFinished(job.state) && job.expiresAt !== null) this.#expiry.note(job.id, job.expiresAt);
    });
    this.#holders = new HeldRegistry(resources.meta, this.#origin, () => [
      ...this.#held.keys(),
      ...this.#claiming,
      ...this.#launching,
      ...this.#unheard,
    ]);
    this.#countsWrite = new CoalescedWrite(() =>
      this.#r.meta.put(`count.${this.#origin}`, JSON.stringify(this.#counts)),
    );
    // A message handed back after its pull gave up is waiting again: tell this process's workers,
    // or they would find it only at their next poll.
    this.#puller = new Puller(resources.nc, resources.requests, (consumer) => {
      const queue = this.#consumerQueues.get(consumer);
      if (queue !== undefined)
        setTimeout(() => this.#events.emit("event", { type: "enqueued", queue }), 5).unref();
    });
    this.#slots = new GroupSlots(resources.meta, this.#repo);
    this.#rates = new GroupRates(resources.meta);
    // One instance for the store's life: its identity lets it retry its own failed enqueues at once.
    this.#schedules = new NatsSchedules(resources.meta, enqueueOnce(this));
    this.#events.setMaxListeners(0);
    // The dispatches of jobs this process runs stay with it (AckWait is short, see open.ts), as long
    // as their lease is live: a job whose lease ran out is left to redelivery and rescue.
    this.#keepAlive = setInterval(
      () => {
        const now = Date.now();
        for (const held of this.#held.values())
          if ((held.known.job.leaseExpiresAt ?? 0) > now) held.message?.working();
      },
      Math.max(50, Math.floor(ackWaitMs / 3)),
    );
    this.#keepAlive.unref();
    this.#events.on("event", (event: StoreEvent) => {
      if (event.type !== "enqueued") return;
      this.#launchesSeen.set(event.queue, (this.#launchesSeen.get(event.queue) ?? 0) + 1);
      this.#backlog.delete(event.queue);
    });
  }

  // --- lifecycle -------------------------------------------------------------------------------

  async migrate(): Promise<number> {
    if (this.#sub === undefined) {
      this.#sub = this.#r.nc.subscribe(this.#names.events, {
        callback: (err, msg) => {
          if (err === null) this.onWire(msg.data);
        },
      });
      void this.wakeOnReconnect();
      this.#advisories = this.#r.nc.subscribe(
        `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.#names.workStream}.*`,
        {
          callback: (err, msg) => {
            if (err === null) void this.onMaxDeliveries(msg.data).catch(() => undefined);
          },
        },
      );
    }
    return 1;
  }

  /**
   * Events sent while the link was down are lost (core NATS keeps nothing): once reconnected, the
   * workers of this process look for work at once instead of at their next poll.
   */
  private async wakeOnReconnect(): Promise<void> {
    for await (const status of this.#r.nc.status()) {
      if (this.#closed) return;
      if (status.type !== "reconnect") continue;
      for (const queue of this.#queuesClaimed) this.#events.emit("event", { type: "enqueued", queue });
    }
  }

  /**
   * A dispatch reached MaxDeliver: the server will not deliver it again, and in a work-queue stream
   * it would stay forever. Its job fails (as a crash loop does) and the message is deleted. The
   * advisory is a plain NATS message, so one sent while no process listened is missed: the job then
   * waits for `retry()` (docs/stores.md).
   */
  private async onMaxDeliveries(data: Uint8Array): Promise<void> {
    const advisory = JSON.parse(new TextDecoder().decode(data)) as {
      stream_seq?: number;
      deliveries?: number;
    };
    if (typeof advisory.stream_seq !== "number") return;
    const sequence = advisory.stream_seq;
    try {
      await this.failPoisoned(await this.#r.jobIdAt(sequence), advisory.deliveries);
    } finally {
      await this.#r.deleteMessage(sequence);
    }
  }

  private async failPoisoned(jobId: string | undefined, deliveries: number | undefined): Promise<void> {
    if (jobId !== undefined) {
      const now = Date.now();
      const error = {
        code: ErrorCode.HandlerCrashed,
        message: `delivered ${deliveries ?? "too many"} times without finishing (MaxDeliver)`,
        retryable: false,
        attempt: 0,
      };
      const changed = await this.#repo.change(jobId, (job) =>
        isFinished(job.state)
          ? undefined
          : {
              ...job,
              state: "failed",
              error: { ...error, attempt: job.attempts },
              finishedAt: now,
              workerId: null,
              leaseExpiresAt: null,
              expiresAt: retentionEnd(job, now),
            },
      );
      if (changed !== undefined) {
        this.count({ failed: 1 });
        await this.afterFinish(changed.after.job, false);
        this.changed([jobId]);
      }
    }
  }

  async now(): Promise<number> {
    return Date.now();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#countsDirty);
    clearInterval(this.#keepAlive);
    this.#wakeTimers.close();
    await Promise.all([this.flushCounts(), this.#expiry.flush()]).catch(() => undefined);
    this.#expiry.close();
    await this.#holders.close().catch(() => undefined);
    await this.#keeper?.stop();
    this.#sub?.unsubscribe();
    this.#advisories?.unsubscribe();
    this.#puller.close();
    this.#events.removeAllListeners();
    await this.#r.close();
  }

  // --- launching -------------------------------------------------------------------------------

  async enqueue(jobs: readonly NewJob[], context: EnqueueContext = {}): Promise<EnqueueResult[]> {
    if (context.tx !== undefined) {
      throw invalidArgument("tx (a caller's transaction) is for the PostgreSQL store only");
    }
    const now = Date.now();
    const only = jobs.length === 1 ? jobs[0] : undefined;
    if (context.dispatch !== undefined && only !== undefined && canDispatch(only)) {
      return [await this.launchClaimed(only, context.dispatch, now)];
    }
    // Parents are checked before anything is written: a missing one fails the whole call.
    const parentIds = [...new Set(jobs.flatMap((j) => j.dependsOn))];
    const parents = new Map((await this.#repo.readMany(parentIds)).map((v) => [v.job.id, v.job]));
    const inBatch = new Map(jobs.map((j) => [j.id, j]));
    for (const job of jobs) {
      for (const id of job.dependsOn) checkParent(job, parents.get(id) ?? inBatch.get(id));
    }
    const results: EnqueueResult[] = [];
    const queues = new Set<string>();
    let launched = 0;
    let failedAtLaunch = 0;
    // The held list names the batch while its records and dispatches are written (beside the first
    // write, not before it: no round trip of its own); see rescueExpired.
    for (const job of jobs) this.#launching.add(job.id);
    const listed = this.announceHeld();
    try {
      await this.launchEach(jobs, now, parents, results, queues, (failed) => {
        launched += 1;
        if (failed) failedAtLaunch += 1;
      });
      await listed;
    } finally {
      for (const job of jobs) this.#launching.delete(job.id);
      // Off the list again (not waited for; bursts share the write): a process that only launches
      // must not be read as holding jobs once it is quiet.
      void this.announceHeld();
    }
    this.count({ launched, failed: failedAtLaunch });
    this.announce([...queues].map((queue) => ({ type: "enqueued", queue })));
    return results;
  }

  private async launchEach(
    jobs: readonly NewJob[],
    now: number,
    parents: ReadonlyMap<string, StoredJob>,
    results: EnqueueResult[],
    queues: Set<string>,
    launched: (failedAtLaunch: boolean) => void,
  ): Promise<void> {
    for (const job of jobs) {
      const holder = job.uniqueKey === null ? undefined : await this.takeUniqueKey(job);
      if (holder !== undefined) {
        results.push({ id: holder, deduplicated: true });
        continue;
      }
      const record = this.newRecord(job, now, parents);
      const [revision] = await Promise.all([
        this.#repo.create(record).catch((error: unknown) => {
          // The answer was lost, not necessarily the write: if the record landed, dispatch it later.
          this.recoverLaunch(job.id, 250);
          throw error;
        }),
        this.#index.add(record),
      ]);
      if (revision === undefined) throw invalidArgument(`a job with id ${job.id} exists`);
      // Linked after the child exists: a parent that finishes meanwhile is re-checked below.
      for (const parentId of job.dependsOn) await this.linkChild(parentId, job.id);
      let current: Versioned = { job: record, revision };
      if (job.dependsOn.length > 0) current = (await this.recountParents(current, job.dependsOn)) ?? current;
      if (isWaiting(current.job) && current.job.pendingDeps === 0) {
        await this.dispatch(current);
        queues.add(job.queue);
      }
      // A parent had already failed: stored failed, and counted as a failure.
      launched(current.job.state === "failed");
      results.push({ id: job.id, deduplicated: false });
    }
  }

  /**
   * Direct dispatch (EnqueueContext.dispatch): the record is created already claimed by the
   * offering worker, and no dispatch message is published (the worker holds no message to ack).
   * Launch to start is one write, beside this process's held list, which names the job so that a
   * rescuer finds it if this process dies: the rescue re-dispatches it like any other. A queue
   * found paused gets the job back as an ordinary waiting launch.
   */
  private async launchClaimed(job: NewJob, offer: DispatchOffer, now: number): Promise<EnqueueResult> {
    const waiting = this.newRecord(job, now, new Map());
    const record = claimed(waiting, offer.workerId, offer.leaseMs, now);
    this.#launching.add(job.id);
    let revision: number | undefined;
    let paused: boolean;
    try {
      // The pause is looked at beside the write, not before it: one round trip from launch to start.
      [revision, , , paused] = await Promise.all([
        this.#repo.create(record),
        this.#index.add(record),
        this.announceHeld(),
        this.queueInfo(job.queue).then((q) => q.paused),
      ]);
      if (revision === undefined) throw invalidArgument(`a job with id ${job.id} exists`);
      this.#held.set(job.id, { message: undefined, known: { job: record, revision } });
      this.#launching.delete(job.id);
    } catch (error) {
      // The record may have landed, claimed by a worker that will never hear of it: it stays on
      // this process's held list until a rescue (after its lease) takes it over.
      this.#unheard.add(job.id);
      this.#launching.delete(job.id);
      throw error;
    }
    this.count({ launched: 1 });
    if (paused) {
      // The queue is paused: the job waits like any other launch (a cancel meanwhile stands).
      this.#held.delete(job.id);
      const back = await this.#repo.write(waiting, revision);
      if (back === undefined) this.#unheard.add(job.id);
      else {
        await this.dispatch({ job: waiting, revision: back });
        this.announce([{ type: "enqueued", queue: job.queue }]);
      }
      return { id: job.id, deduplicated: false };
    }
    this.changed([job.id], true);
    const taken = toClaimedJob(record);
    this.#keeper?.keepLeases(offer.workerId, [taken], offer.leaseMs, Date.now() + this.#stallMs, true);
    return { id: job.id, deduplicated: false, claimed: taken };
  }

  private newRecord(job: NewJob, now: number, parents: ReadonlyMap<string, StoredJob>): StoredJob {
    const { pending, failedParent } = tallyParents(
      job.dependsOn.map((id) => ({ id, state: parents.get(id)?.state ?? "queued" })),
    );
    const runAt = job.runAt ?? now + job.delayMs;
    const base: StoredJob = {
      id: job.id,
      handler: job.handler,
      queue: job.queue,
      state: runAt > now ? "scheduled" : "queued",
      priority: job.priority,
      owner: job.owner,
      label: job.label,
      group: job.group,
      uniqueKey: job.uniqueKey,
      serializer: job.serializer,
      cookieHash: hashText(job.cookieHash),
      attempts: 0,
      maxAttempts: job.maxAttempts,
      policy: job.policy,
      progress: null,
      launchedAt: now,
      runAt,
      startedAt: null,
      finishedAt: null,
      error: null,
      consumed: false,
      detached: job.detached,
      cancelRequested: false,
      cancelDeadline: null,
      fence: 0,
      workerId: null,
      leaseExpiresAt: null,
      pendingDeps: pending,
      children: [],
      watched: false,
      expiresAt: null,
      dispatches: 0,
      payload: job.payload,
      result: null,
    };
    if (failedParent === undefined) return base;
    return parentFinished(base, failedParent, false, now) ?? base;
  }

  /** The unfinished holder of the job's uniqueKey in its owner's scope, or undefined once this job holds it. */
  private async takeUniqueKey({ uniqueKey, owner, id }: NewJob): Promise<string | undefined> {
    const key = uniqueKeyId(uniqueKey!, owner);
    for (;;) {
      try {
        await this.#r.unique.create(key, id);
        return undefined;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
      const entry = await this.#r.unique.get(key);
      if (entry === null || entry.operation !== "PUT") continue;
      const holder = entry.string();
      const held = await this.#repo.read(holder);
      // A holder of another owner is an entry from before keys were scoped (they all had the
      // bare name jobs without an owner keep): it holds nothing in this scope.
      if (held !== undefined && !isFinished(held.job.state) && held.job.owner === owner) return holder;
      // The holder finished (or vanished) without letting go, e.g. it crashed in between.
      try {
        await this.#r.unique.update(key, id, entry.revision);
        return undefined;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
  }

  private async releaseUniqueKey(job: StoredJob): Promise<void> {
    if (job.uniqueKey === null) return;
    const key = uniqueKeyId(job.uniqueKey, job.owner);
    const entry = await this.#r.unique.get(key);
    if (entry === null || entry.operation !== "PUT" || entry.string() !== job.id) return;
    await this.#r.unique.purge(key, { previousSeq: entry.revision }).catch(() => undefined);
  }

  private async linkChild(parentId: string, childId: string): Promise<void> {
    await this.#repo.change(parentId, (parent) =>
      parent.children.includes(childId) ? undefined : { ...parent, children: [...parent.children, childId] },
    );
  }

  /** Re-reads a child's parents after linking: one may have finished before it saw the link. */
  private async recountParents(
    child: Versioned,
    parentIds: readonly string[],
  ): Promise<Versioned | undefined> {
    const now = Date.now();
    const parents = await this.#repo.readMany(parentIds);
    const { pending, failedParent } = tallyParents(
      parents.map((p) => ({ id: p.job.id, state: p.job.state })),
    );
    const changed = await this.#repo.change(
      child.job.id,
      (job) => {
        if (!isWaiting(job)) return undefined;
        if (failedParent !== undefined) return parentFinished(job, failedParent, false, now);
        return job.pendingDeps === pending ? undefined : { ...job, pendingDeps: pending };
      },
      child,
    );
    return changed?.after;
  }

  /** Puts the job on the work stream: its next dispatch, carrying the revision it was read at. */
  private async dispatch(current: Versioned): Promise<void> {
    try {
      await this.publishDispatch(current);
    } catch (error) {
      // The record is written: keep trying in the background (the message id makes a repeat a
      // no-op), so a job whose launch answered FERRY_STORE_UNAVAILABLE still runs once NATS is back.
      this.redispatchLater(current, 250);
      throw error;
    }
  }

  private async publishDispatch(current: Versioned): Promise<void> {
    const { job } = current;
    await this.#r.publish(
      this.#names.workSubject(job.queue, bandOf(job.priority), job.handler),
      encodeJob(job),
      {
        msgID: `${job.id}.${job.dispatches}`,
        headers: { [JOB_HEADER]: job.id, [REVISION_HEADER]: String(current.revision) },
      },
    );
  }

  /**
   * After a launch whose record write went unanswered: once NATS answers again, a record that did
   * land and waits undispatched gets its dispatch (the message id makes a repeat a no-op).
   */
  private recoverLaunch(id: string, delayMs: number): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#repo.read(id).then(
        (found) => {
          if (found === undefined || !isWaiting(found.job) || found.job.pendingDeps > 0) return;
          if (found.job.dispatches === 0) this.redispatchLater(found, 0);
        },
        () => this.recoverLaunch(id, Math.min(delayMs * 2, 5_000)),
      );
    }, delayMs);
    timer.unref();
  }

  /** Publishes a dispatch that failed, with back-off, until it lands or the store closes. */
  private redispatchLater(current: Versioned, delayMs: number): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.publishDispatch(current).then(
        () => this.announce([{ type: "enqueued", queue: current.job.queue }]),
        () => this.redispatchLater(current, Math.min(delayMs * 2, 5_000)),
      );
    }, delayMs);
    timer.unref();
  }

  /** Back to waiting with a fresh dispatch (retry, snooze, release, rescue, retry()). */
  private async redispatch(id: string, known?: Versioned): Promise<Versioned | undefined> {
    const bumped = await this.#repo.change(
      id,
      (job) => (isWaiting(job) ? { ...job, dispatches: job.dispatches + 1 } : undefined),
      known,
    );
    if (bumped === undefined) return undefined;
    await this.dispatch(bumped.after);
    this.announce([{ type: "enqueued", queue: bumped.after.job.queue }]);
    return bumped.after;
  }

  // --- reading ---------------------------------------------------------------------------------

  async getJob(id: string): Promise<JobRecord | undefined> {
    const found = await this.#repo.read(id);
    return found === undefined ? undefined : toJobRecord(found.job);
  }

  async getJobs(ids: readonly string[]): Promise<JobRecord[]> {
    return (await this.#repo.readMany(ids)).map((v) => toJobRecord(v.job));
  }

  async listJobs(request: ListRequest): Promise<JobRecord[]> {
    const page: JobRecord[] = [];
    for await (const { job } of this.candidates(request, request.afterId, request.limit)) {
      if (!matches(job, request)) continue;
      page.push(toJobRecord(job, false));
      if (page.length >= request.limit) break;
    }
    return page;
  }

  /**
   * The records that may match `filter`, in id (launch) order: the index narrows by queue and
   * owner without reading records; records are read a chunk at a time, as the caller goes.
   */
  private async *candidates(
    filter: JobFilter,
    afterId?: string,
    firstChunk = LIST_CHUNK,
  ): AsyncGenerator<Versioned> {
    const ids = await this.#index.ids(filter, afterId);
    // A page of a few starts with a read of a few; a filter that skips many doubles it each time.
    let chunk = Math.max(1, Math.min(firstChunk, LIST_CHUNK));
    for (let i = 0; i < ids.length; i += chunk, chunk = Math.min(chunk * 2, LIST_CHUNK)) {
      for (const found of await this.#repo.readMany(ids.slice(i, i + chunk))) yield found;
    }
  }

  /** Reads the owner's records through the index: the cost grows with the jobs it has stored. */
  async countActive(owner: string, limit: number): Promise<number> {
    // Counting no further than 0 is 0, as the SQL stores' LIMIT 0 answers (the loop below would say 1).
    if (limit <= 0) return 0;
    let active = 0;
    for await (const { job } of this.candidates({ owner })) {
      if (job.owner !== owner || isFinished(job.state)) continue;
      if (++active >= limit) break;
    }
    return active;
  }

  async stats(): Promise<StoreStats> {
    const counts = new Map<string, number>();
    for await (const { job } of this.#repo.scan()) {
      const key = `${job.queue}\u0000${job.state}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    await this.flushCounts();
    const totals = new Map<string, number>();
    for (const key of await listKeys(this.#r.meta, "count.*")) {
      const entry = await this.#r.meta.get(key);
      if (entry === null || entry.operation !== "PUT") continue;
      for (const [name, value] of Object.entries(entry.json<Record<string, number>>())) {
        totals.set(name, (totals.get(name) ?? 0) + value);
      }
    }
    return toStoreStats(
      [...counts].map(([key, n]) => {
        const [queue, state] = key.split("\u0000") as [string, JobState];
        return { queue, state, n };
      }),
      [...totals].map(([name, value]) => ({ name, value })),
    );
  }

  // --- the owner's controls --------------------------------------------------------------------

  async consumeResult(
    id: string,
  ): Promise<
    | { readonly status: "ok"; readonly record: JobRecord }
    | { readonly status: "not_finished" | "consumed" | "missing" }
  > {
    let answer: "not_finished" | "consumed" | "missing" | undefined;
    const changed = await this.#repo.change(id, (job) => {
      if (!isFinished(job.state)) answer = "not_finished";
      else if (job.consumed) answer = "consumed";
      else return { ...job, consumed: true, payload: null, result: null };
      return undefined;
    });
    if (changed === undefined) return { status: answer ?? "missing" };
    this.changed([id]);
    return { status: "ok", record: toJobRecord({ ...changed.after.job, result: changed.before.result }) };
  }

  async requestCancel(id: string, graceMs: number): Promise<CancelResult> {
    const now = Date.now();
    const changed = await this.#repo.change(id, (job) => {
      if (isWaiting(job)) {
        return {
          ...job,
          state: "cancelled",
          finishedAt: now,
          error: { code: ErrorCode.Cancelled, message: "cancelled", retryable: false, attempt: job.attempts },
          expiresAt: retentionEnd(job, now),
        };
      }
      if (job.state === "running" && !job.cancelRequested) {
        return { ...job, cancelRequested: true, cancelDeadline: now + graceMs };
      }
      return undefined;
    });
    if (changed === undefined) {
      const found = await this.#repo.read(id);
      return { state: found?.job.state };
    }
    const job = changed.after.job;
    if (job.state === "cancelled") {
      this.count({ cancelled: 1 });
      await this.afterFinish(job, false);
      this.changed([id]);
    } else {
      this.send({ type: "cancel", id, graceMs }, { x: [id, graceMs] });
    }
    return { state: job.state };
  }

  async cancelMany(filter: JobFilter, graceMs: number): Promise<number> {
    let reached = 0;
    for await (const { job } of this.candidates(filter)) {
      if (isFinished(job.state) || !matches(job, filter)) continue;
      const { state } = await this.requestCancel(job.id, graceMs);
      if (state !== undefined) reached += 1;
    }
    return reached;
  }

  async detach(id: string): Promise<boolean> {
    const now = Date.now();
    const changed = await this.#repo.change(id, (job) =>
      job.detached && job.cookieHash === null
        ? undefined
        : {
            ...job,
            detached: true,
            cookieHash: null,
            result: null,
            expiresAt: isFinished(job.state)
              ? Math.min(job.expiresAt ?? now, retentionEnd(job, now))
              : job.expiresAt,
          },
    );
    if (changed === undefined) return (await this.#repo.read(id)) !== undefined;
    this.changed([id]);
    return true;
  }

  async detachMany(filter: JobFilter): Promise<number> {
    let n = 0;
    for await (const { job } of this.candidates(filter)) {
      if (matches(job, filter) && (await this.detach(job.id))) n += 1;
    }
    return n;
  }

  async retry(id: string): Promise<boolean> {
    const now = Date.now();
    const changed = await this.#repo.change(id, (job) =>
      job.state === "failed" || job.state === "cancelled"
        ? {
            ...job,
            state: "queued",
            attempts: 0,
            runAt: now,
            finishedAt: null,
            error: null,
            cancelRequested: false,
            cancelDeadline: null,
            expiresAt: null,
            consumed: false,
          }
        : undefined,
    );
    if (changed === undefined) return false;
    await this.redispatch(id, changed.after);
    this.changed([id]);
    return true;
  }

  async purge(request: PurgeRequest): Promise<number> {
    const before = Date.now() - request.olderThanMs;
    let n = 0;
    for await (const { job, revision } of this.#repo.scan()) {
      if (!isFinished(job.state) || (request.state !== undefined && job.state !== request.state)) continue;
      if ((job.finishedAt ?? 0) > before) continue;
      if (await this.removeJob(job, revision)) n += 1;
    }
    return n;
  }

  // --- queues ----------------------------------------------------------------------------------

  async setQueuePaused(queue: string, paused: boolean): Promise<void> {
    await this.changeQueue(queue, (q) => ({ ...q, paused }));
    if (!paused) this.announce([{ type: "enqueued", queue }]);
  }

  async setQueueOptions(queue: string, options: QueueOptionsUpdate): Promise<void> {
    await this.changeQueue(queue, (q) => ({
      ...q,
      ...(options.groupConcurrency === undefined ? {} : { groupConcurrency: options.groupConcurrency }),
      ...(options.groupRate === undefined ? {} : { groupRate: options.groupRate }),
    }));
  }

  async listQueues(): Promise<QueueInfo[]> {
    const out: QueueInfo[] = [];
    for (const key of await listKeys(this.#r.meta, "queue.*")) {
      const q = await this.queueInfo(key.slice("queue.".length));
      out.push(q);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  private async queueInfo(name: string): Promise<QueueInfo> {
    return queueFromEntry(name, await this.#r.meta.get(`queue.${name}`));
  }

  private async changeQueue(name: string, change: (q: QueueInfo) => QueueInfo): Promise<void> {
    for (;;) {
      const entry = await this.#r.meta.get(`queue.${name}`);
      const { paused, groupConcurrency, groupRate } = change(queueFromEntry(name, entry));
      const value = JSON.stringify({ paused, groupConcurrency, groupRate });
      try {
        if (entry === null) await this.#r.meta.create(`queue.${name}`, value);
        else await this.#r.meta.update(`queue.${name}`, value, entry.revision);
        return;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
  }

  // --- workers ---------------------------------------------------------------------------------

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    // No transaction ties them together here, so the outcomes and the claim go at the same time.
    const [applied, jobs] = await Promise.all([
      request.finished?.length ? this.finish(request.finished) : Promise.resolve([]),
      this.claimJobs(request),
    ]);
    if (jobs.length > 0)
      this.#keeper?.keepLeases(request.workerId, jobs, request.leaseMs, Date.now() + this.#stallMs, true);
    return { jobs, applied };
  }

  private async claimJobs(request: ClaimRequest): Promise<ClaimedJob[]> {
    for (const queue of request.queues) this.#queuesClaimed.add(queue);
    const jobs: ClaimedJob[] = [];
    for (const queue of request.queues) {
      if (jobs.length >= request.limit) break;
      // Which (band, handler) subjects hold messages at all (waiting or out with a worker): the
      // others are not pulled, since an empty pull waits for its request to expire. The last
      // round's view, less what it pulled, stands in while nothing was launched on the queue since
      // (a backlog being drained); the pause is checked after the pull either way.
      const generation = this.#launchesSeen.get(queue) ?? 0;
      let backlog = this.#backlog.get(queue);
      this.#backlog.delete(queue);
      if (backlog === undefined) {
        const [queueState, held] = await Promise.all([
          this.queueInfo(queue),
          this.#r.messagesBySubject(this.#names.queueSubjects(queue)),
        ]);
        if (queueState.paused) continue;
        backlog = { ...held };
      }
      const view = { backlog, paused: false };
      for (const band of BANDS) {
        if (jobs.length >= request.limit) break;
        const waiting = request.handlers
          .map((handler) => ({
            handler,
            messages: backlog[this.#names.workSubject(queue, band, handler)] ?? 0,
          }))
          .filter((h) => h.messages > 0);
        if (waiting.length > 0)
          jobs.push(
            ...(await this.claimBand(queue, band, waiting, request, request.limit - jobs.length, view)),
          );
      }
      const more = Object.values(backlog).some((n) => n > 0);
      if (more && !view.paused && (this.#launchesSeen.get(queue) ?? 0) === generation)
        this.#backlog.set(queue, backlog);
    }
    return jobs;
  }

  /**
   * Claims up to `want` jobs of one band, oldest first across its handlers (the stream sequence
   * orders them): each handler's consumer is pulled, the answers merged, and what is beyond `want`
   * goes straight back.
   */
  private async claimBand(
    queue: string,
    band: (typeof BANDS)[number],
    waiting: readonly { readonly handler: string; readonly messages: number }[],
    request: ClaimRequest,
    want: number,
    view: { readonly backlog: Record<string, number>; paused: boolean },
  ): Promise<ClaimedJob[]> {
    const sources = await Promise.all(
      waiting.map(async ({ handler, messages }) => {
        const consumer = this.#names.consumer(queue, band, handler);
        const subject = this.#names.workSubject(queue, band, handler);
        await this.ensureConsumer(consumer, subject);
        this.#consumerQueues.set(consumer, queue);
        return { consumer, subject, messages, open: true };
      }),
    );
    const jobs: ClaimedJob[] = [];
    let failure: unknown;
    // Stale dispatches (of jobs finished, cancelled or re-dispatched since) yield nothing and are
    // dropped: pull again, a few times, to fill the request with live ones.
    for (let pulls = 0; pulls < 4 && jobs.length < want; pulls++) {
      const left = want - jobs.length;
      const asking = sources.filter((source) => source.open);
      if (asking.length === 0) break;
      // Asked every time (an empty answer is one quick round trip): a cache of "empty" would hide a
      // job another process launched a moment ago. No more than a subject holds: a request for
      // more waits out its expiry on the server.
      const answers = await Promise.all(
        asking.map(async (source) => {
          const asked = Math.min(left, source.messages);
          const answer = await this.#puller.pull(this.#names.workStream, source.consumer, asked);
          // A short, answered reply means this consumer is drained for now. Unanswered: a message
          // may have reached the request after we gave up on it (it comes back at once), so ask again.
          if (answer.answered && answer.messages.length < asked) source.open = false;
          const remaining = source.open ? (view.backlog[source.subject] ?? 0) - answer.messages.length : 0;
          view.backlog[source.subject] = Math.max(0, remaining);
          return answer.messages;
        }),
      );
      const messages = answers.flat().sort((a, b) => a.streamSequence - b.streamSequence);
      if (messages.length === 0) continue;
      // The pause may have come between our first look and the pull (a launch after a pause must
      // stay queued): look again now that there is something to take.
      if ((await this.queueInfo(queue)).paused) {
        for (const message of messages) this.putBack(message, queue, PAUSED_RETRY_MS);
        view.paused = true;
        break;
      }
      for (const extra of messages.splice(left)) extra.nak(1);
      // Settled one by one: a failure on one message must not lose the jobs already claimed beside
      // it (their records say running; only this answer knows it). The held list is written at the
      // same time, naming every job this round may claim, so it costs no round trip of its own.
      for (const message of messages) this.#claiming.add(message.jobId);
      const [taken] = await Promise.all([
        Promise.allSettled(messages.map((m) => this.take(m, request))),
        this.announceHeld(),
      ]);
      for (const message of messages) this.#claiming.delete(message.jobId);
      for (const [i, outcome] of taken.entries()) {
        if (outcome.status === "fulfilled") {
          if (outcome.value !== undefined) jobs.push(outcome.value);
        } else {
          messages[i]!.nak(FAILED_TAKE_RETRY_MS);
          failure ??= outcome.reason;
        }
      }
    }
    if (jobs.length === 0 && failure !== undefined) throw failure;
    return jobs;
  }

  /** Publishes what this process holds before its claims answer, so any rescuer can find them. */
  private async announceHeld(): Promise<void> {
    // Unwritten, the jobs are still found: their dispatches come back after AckWait (see held-registry.ts).
    await this.#holders.publish().catch(() => undefined);
  }

  /** A dispatch goes back on the stream for `delayMs`; this process's workers look again then. */
  private putBack(message: WorkMessage, queue: string, delayMs: number): void {
    message.nak(delayMs);
    this.#wakeTimers.after(queue, delayMs);
  }

  private ensureConsumer(name: string, subject: string): Promise<void> {
    let ready = this.#consumers.get(name);
    if (ready === undefined) {
      ready = this.#r.ensureConsumer(name, subject);
      ready.catch(() => this.#consumers.delete(name));
      this.#consumers.set(name, ready);
    }
    return ready;
  }

  /**
   * Decides what one delivered dispatch means, from the job's record (never from the message): claim
   * it, wait (nak) until it is due or its holder's lease ends, or drop a stale dispatch.
   */
  private async take(message: WorkMessage, request: ClaimRequest): Promise<ClaimedJob | undefined> {
    // The record as it was published with this dispatch: when nothing changed since, the claim's
    // compare-and-set needs no read first (a stale snapshot just loses and reads).
    let snapshot = message.snapshot();
    for (let race = 0; race < 20; race++) {
      const current = snapshot ?? (await this.#repo.read(message.jobId));
      snapshot = undefined;
      if (current === undefined && message.deliveries < MISSING_RECORD_DELIVERIES) {
        // A replicated KV may answer a read from a replica that has not caught up yet: a missing
        // record is believed only after a few deliveries (a dispatch dropped here is a job lost).
        this.putBack(message, this.#consumerQueues.get(message.consumer) ?? "", MISSING_RECORD_RETRY_MS);
        return undefined;
      }
      if (current === undefined || isFinished(current.job.state)) {
        message.term();
        return undefined;
      }
      const now = Date.now();
      const { job } = current;
      if (job.state === "running") {
        if ((job.leaseExpiresAt ?? 0) > now) {
          // Its holder is alive (this is a redelivery it did not keep): look again when the lease ends.
          this.putBack(message, job.queue, Math.min((job.leaseExpiresAt ?? now) - now + 100, MAX_NAK_MS));
          return undefined;
        }
        await this.rescueOne(current);
        continue;
      }
      if (job.pendingDeps > 0) {
        // Dispatched again when its last parent completes.
        message.term();
        return undefined;
      }
      if (job.runAt > now) {
        this.putBack(message, job.queue, Math.min(job.runAt - now, MAX_NAK_MS));
        return undefined;
      }
      const settings = job.group === null ? undefined : await this.queueInfo(job.queue);
      const limit = settings?.groupConcurrency ?? null;
      if (
        job.group !== null &&
        limit !== null &&
        !(await this.#slots.take(job.queue, job.group, limit, job.id))
      ) {
        // Its group is full: back on the stream for a moment (a finishing job announces its queue).
        this.putBack(message, job.queue, GROUP_FULL_RETRY_MS);
        return undefined;
      }
      const rate = settings?.groupRate ?? null;
      const waitMs =
        job.group === null || rate === null ? 0 : await this.#rates.take(job.queue, job.group, rate, now);
      if (waitMs > 0) {
        // Its group used up this window's starts: back on the stream until the next window.
        if (job.group !== null && limit !== null)
          await this.#slots.release(job.queue, job.group, limit, job.id);
        this.putBack(message, job.queue, Math.min(waitMs, MAX_NAK_MS));
        return undefined;
      }
      const next = claimed(job, request.workerId, request.leaseMs, now);
      const revision = await this.#repo.write(next, current.revision);
      if (revision === undefined) {
        if (job.group !== null && limit !== null)
          await this.#slots.release(job.queue, job.group, limit, job.id);
        if (job.group !== null && rate !== null) await this.#rates.giveBack(job.queue, job.group, rate, now);
        continue;
      }
      this.#held.set(job.id, { message, known: { job: next, revision } });
      this.changed([job.id], true);
      return toClaimedJob(next);
    }
    message.nak(1_000);
    return undefined;
  }

  async finish(outcomes: readonly Outcome[]): Promise<boolean[]> {
    const recorded = await Promise.all(outcomes.map((outcome) => this.recordOutcome(outcome)));
    const applied = recorded.map((r) => r !== undefined);
    // Counted before answering, so stats() anywhere agrees with the states a caller then sees; the
    // expiries too, so no finished job escapes pruning once its worker moved on. Written beside the
    // acks, once every record is: two round trips in all, not three.
    await Promise.all([
      ...recorded.map((r) => r?.()),
      applied.some(Boolean) ? Promise.all([this.flushCounts(), this.#expiry.flush()]) : undefined,
    ]);
    return applied;
  }

  private async finishOne(outcome: Outcome): Promise<boolean> {
    const then = await this.recordOutcome(outcome);
    await then?.();
    return then !== undefined;
  }

  /**
   * Writes an outcome into the job's record (fenced); answers what is left to do once it landed
   * (ack the dispatch, re-dispatch, release a group slot, tell dependants), or undefined when the
   * outcome was refused.
   */
  private async recordOutcome(outcome: Outcome): Promise<(() => Promise<void>) | undefined> {
    const held = this.#held.get(outcome.id);
    let applied: ReturnType<typeof applyOutcome>;
    const changed = await this.#repo.change(
      outcome.id,
      (job) => {
        applied = applyOutcome(job, outcome, Date.now());
        return applied?.next;
      },
      held?.known,
    );
    if (changed === undefined || applied === undefined) {
      // Fenced off: this claim is over (another holder's entry, if any, stays).
      if (held?.known.job.fence === outcome.fence) this.#held.delete(outcome.id);
      return undefined;
    }
    this.#held.delete(outcome.id);
    this.count(applied.counts);
    const job = changed.after.job;
    const succeeded = applied.finished?.succeeded === true;
    return () => this.afterOutcome(job, changed.after, held, succeeded);
  }

  private async afterOutcome(
    job: StoredJob,
    after: Versioned,
    held: Held | undefined,
    succeeded: boolean,
  ): Promise<void> {
    if (job.group !== null) {
      const { groupConcurrency } = await this.queueInfo(job.queue);
      if (groupConcurrency !== null) {
        await this.#slots.release(job.queue, job.group, groupConcurrency, job.id);
        this.announce([{ type: "enqueued", queue: job.queue }]);
      }
    }
    if (isWaiting(job)) {
      // A new dispatch first, then the old one acked: a crash in between leaves two tickets for
      // one job, and the record lets only one of them claim it.
      await this.redispatch(job.id, after);
      await held?.message?.ackAck();
    } else {
      await held?.message?.ackAck();
      if (job.uniqueKey !== null || job.children.length > 0) await this.afterFinish(job, succeeded);
    }
    // Other processes hear of it only when one of them waits on it (markWatched).
    this.changed([job.id], !job.watched);
  }

  /** A job finished for good: free its uniqueKey and tell the jobs that wait on it. */
  private async afterFinish(job: StoredJob, succeeded: boolean): Promise<void> {
    await this.releaseUniqueKey(job);
    const now = Date.now();
    for (const childId of job.children) {
      const changed = await this.#repo.change(childId, (child) =>
        parentFinished(child, job.id, succeeded, now),
      );
      if (changed === undefined) continue;
      const child = changed.after.job;
      if (child.state === "failed") {
        this.count({ failed: 1 });
        await this.afterFinish(child, false);
        this.changed([child.id]);
      } else if (child.pendingDeps === 0) {
        await this.redispatch(child.id, changed.after);
      }
    }
  }

  async heartbeat(
    worker: WorkerInfo,
    leases: readonly LeaseRef[],
    leaseMs: number,
  ): Promise<HeartbeatResult> {
    const now = Date.now();
    await Promise.all([
      this.#r.meta.put(`worker.${worker.id}`, JSON.stringify({ ...worker, lastHeartbeatAt: now })),
      // Keeps this process's held list fresh, so rescuers do not take it for a dead one's.
      this.#holders.publish().catch(() => undefined),
    ]);
    const lost: string[] = [];
    const cancelRequested: { id: string; graceLeftMs: number }[] = [];
    try {
      await this.renewLeases(leases, leaseMs, now, lost, cancelRequested);
    } finally {
      // Workers heartbeat; bare Store users don't, and get no thread.
      if (this.#stallMs > 0 && !this.#closed) {
        this.#keeper ??= this.#r.startLeaseKeeper();
        const gone = new Set(lost);
        const kept = leases.filter((l) => !gone.has(l.id));
        this.#keeper.keepLeases(worker.id, kept, leaseMs, Date.now() + this.#stallMs);
      }
    }
    return { lost, cancelRequested };
  }

  private async renewLeases(
    leases: readonly LeaseRef[],
    leaseMs: number,
    now: number,
    lost: string[],
    cancelRequested: { id: string; graceLeftMs: number }[],
  ): Promise<void> {
    await Promise.all(
      leases.map(async (lease) => {
        const held = this.#held.get(lease.id);
        held?.message?.working();
        const changed = await this.#repo.change(
          lease.id,
          (job) =>
            job.state === "running" && job.fence === lease.fence
              ? { ...job, leaseExpiresAt: now + leaseMs }
              : undefined,
          held?.known,
        );
        if (changed === undefined) {
          lost.push(lease.id);
          return;
        }
        if (held !== undefined) held.known = changed.after;
        const job = changed.after.job;
        if (job.cancelRequested) {
          cancelRequested.push({ id: job.id, graceLeftMs: Math.max(0, (job.cancelDeadline ?? now) - now) });
        }
      }),
    );
  }

  async setProgress(lease: LeaseRef, progress: Progress): Promise<boolean> {
    const held = this.#held.get(lease.id);
    const changed = await this.#repo.change(
      lease.id,
      (job) => (job.state === "running" && job.fence === lease.fence ? { ...job, progress } : undefined),
      held?.known,
    );
    if (changed === undefined) return false;
    if (held !== undefined) held.known = changed.after;
    this.changed([lease.id], !changed.after.job.watched);
    return true;
  }

  async rescueExpired(
    workerTtlMs: number,
  ): Promise<{ readonly requeued: number; readonly failed: number; readonly cancelled: number }> {
    const tally = { requeued: 0, failed: 0, cancelled: 0 };
    const now = Date.now();
    const rescueIfExpired = async (current: Versioned | undefined): Promise<void> => {
      const job = current?.job;
      if (current === undefined || job?.state !== "running") return;
      const forced = job.cancelRequested && (job.cancelDeadline ?? now) < now - 2_000;
      if ((job.leaseExpiresAt ?? 0) >= now && !forced) return;
      await this.rescueOne(current, tally);
    };
    if (await this.claimSweep("rescue", now)) {
      for await (const current of this.#repo.scan()) await rescueIfExpired(current);
    } else {
      // Only the jobs some process says it holds (held-registry.ts), not every record.
      const holders = await this.#holders.list();
      const ids = new Set([...this.#held.keys(), ...this.#unheard, ...holders.flatMap((h) => h.ids)]);
      // An unheard launch that never landed, or already ended, needs no more listing.
      for (const id of this.#unheard) {
        const found = await this.#repo.read(id);
        if (found === undefined || found.job.state !== "running") this.#unheard.delete(id);
      }
      for (const id of ids) await rescueIfExpired(await this.#repo.read(id));
      for (const entry of holders) {
        if (entry.origin === this.#origin || entry.at >= now - workerTtlMs) continue;
        // A process that went silent may have died between a launch's record and its dispatch:
        // dispatch what it listed and is still waiting. The message id (job id and dispatch count)
        // makes this a no-op when its dispatch did land within the duplicate window; past it, a
        // second ticket for one job, and the record lets only one of them claim it.
        for (const id of entry.ids) {
          const found = await this.#repo.read(id);
          if (found !== undefined && isWaiting(found.job) && found.job.pendingDeps === 0)
            await this.publishDispatch(found);
        }
        await this.#holders.forget(entry);
      }
    }
    for (const key of await listKeys(this.#r.meta, "worker.*")) {
      const entry = await this.#r.meta.get(key);
      if (entry?.operation !== "PUT") continue;
      if (entry.json<WorkerInfo>().lastHeartbeatAt < now - workerTtlMs) {
        await this.#r.meta.purge(key, { previousSeq: entry.revision }).catch(() => undefined);
      }
    }
    return tally;
  }

  /** Applies the shared rescue rule to a running job whose holder vanished. */
  private async rescueOne(
    current: Versioned,
    tally = { requeued: 0, failed: 0, cancelled: 0 },
  ): Promise<void> {
    const { job } = current;
    const outcome = rescueOutcome(
      {
        id: job.id,
        fence: job.fence,
        attempts: job.attempts,
        maxAttempts: job.maxAttempts,
        cancelRequested: job.cancelRequested,
        policy: JSON.stringify(job.policy),
        lastError: job.error,
      },
      tally,
    );
    await this.finishOne(outcome);
  }

  /** A finished job leaves the record bucket and the listing index. */
  private async removeJob(job: StoredJob, revision: number): Promise<boolean> {
    if (!(await this.#repo.remove(job.id, revision))) return false;
    await this.#index.remove(job);
    return true;
  }

  async pruneExpired(limit: number): Promise<number> {
    const now = Date.now();
    let n = 0;
    const pruneIfDue = async (current: Versioned | undefined): Promise<boolean> => {
      const job = current?.job;
      if (current === undefined || job === undefined || !isFinished(job.state) || job.expiresAt === null)
        return false;
      if (job.expiresAt > now) {
        // Retention moved on since the note (a later write noted it too): keep it in view.
        this.#expiry.note(job.id, job.expiresAt, true);
        return false;
      }
      return this.removeJob(job, current.revision);
    };
    if (await this.claimSweep("prune", now)) {
      for await (const current of this.#repo.scan()) {
        if (n >= limit) break;
        if (await pruneIfDue(current)) n += 1;
      }
      await this.#rates.pruneEnded(now);
    }
    // Only what the expiry notes say is due (expiry-log.ts); this process's own notes first.
    await this.#expiry.flush();
    for (const note of await this.#expiry.due(now)) {
      if (n >= limit) break;
      const ids = [...note.ids];
      while (ids.length > 0 && n < limit) if (await pruneIfDue(await this.#repo.read(ids.shift()!))) n += 1;
      // Cut short by the limit: the rest goes back in a new note.
      for (const id of ids) this.#expiry.note(id, now, true);
      await this.#expiry.drop(note);
    }
    await this.#expiry.flush();
    return n;
  }

  /**
   * The backstop for what the held list and the expiry notes missed (a process that died between
   * two writes): one full scan of the records per `SWEEP_MS` across all processes, by whichever
   * process wins the compare-and-set on `sweep.<what>`, the first one `SWEEP_MS` after the first look.
   */
  private async claimSweep(what: "rescue" | "prune", now: number): Promise<boolean> {
    const key = `sweep.${what}`;
    const entry = await this.#r.meta.get(key);
    const value = JSON.stringify({ at: now });
    try {
      // The first look starts the clock: a new installation has nothing to sweep yet.
      if (entry === null) {
        await this.#r.meta.create(key, value);
        return false;
      }
      if (entry.operation === "PUT" && entry.json<{ at: number }>().at > now - SWEEP_MS) return false;
      await this.#r.meta.update(key, value, entry.revision);
      return true;
    } catch (error) {
      if (isRevisionConflict(error)) return false;
      throw error;
    }
  }

  async removeWorker(workerId: string): Promise<void> {
    this.#keeper?.forget(workerId);
    await this.#r.meta.purge(`worker.${workerId}`).catch(() => undefined);
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    const out: WorkerInfo[] = [];
    for (const key of await listKeys(this.#r.meta, "worker.*")) {
      const entry = await this.#r.meta.get(key);
      if (entry?.operation === "PUT") out.push(entry.json<WorkerInfo>());
    }
    return out;
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

  // --- access control ------------------------------------------------------------------------

  async readAccess(): Promise<AccessDocument | undefined> {
    const entry = await this.#r.meta.get(ACCESS_KEY);
    if (entry === null || entry.operation !== "PUT") return undefined;
    return { revision: entry.revision, data: entry.value };
  }

  async writeAccess(data: Uint8Array, expectedRevision: number): Promise<number | null> {
    try {
      return expectedRevision === 0
        ? await this.#r.meta.create(ACCESS_KEY, data)
        : await this.#r.meta.update(ACCESS_KEY, data, expectedRevision);
    } catch (error) {
      if (isRevisionConflict(error)) return null;
      throw error;
    }
  }

  // --- events ----------------------------------------------------------------------------------

  async markWatched(ids: readonly string[]): Promise<void> {
    await Promise.all(
      ids.map((id) => this.#repo.change(id, (job) => (job.watched ? undefined : { ...job, watched: true }))),
    );
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    const safe = (event: StoreEvent) => {
      try {
        listener(event);
      } catch {
        // A listener's error is its own.
      }
    };
    this.#events.on("event", safe);
    return () => this.#events.off("event", safe);
  }

  /** Tells this process's listeners at once, and the other processes over NATS. */
  private announce(events: readonly StoreEvent[]): void {
    if (events.length === 0) return;
    for (const event of events) this.#events.emit("event", event);
    const queues = events.flatMap((e) => (e.type === "enqueued" ? [e.queue] : []));
    if (queues.length > 0) this.publishEvent({ o: this.#origin, e: queues });
  }

  /** A job changed: local listeners always; other processes when somebody watches it. */
  private changed(ids: readonly string[], quiet = false): void {
    for (const id of ids) this.#events.emit("event", { type: "changed", id });
    if (!quiet) this.publishEvent({ o: this.#origin, c: [...ids] });
  }

  private send(event: StoreEvent, wire: Omit<WireEvent, "o">): void {
    this.#events.emit("event", event);
    this.publishEvent({ o: this.#origin, ...wire });
  }

  private publishEvent(event: WireEvent): void {
    if (this.#closed) return;
    try {
      this.#r.nc.publish(this.#names.events, encoder.encode(JSON.stringify(event)));
    } catch {
      // Events are hints: pollers catch up.
    }
  }

  private onWire(data: Uint8Array): void {
    let event: WireEvent;
    try {
      event = JSON.parse(new TextDecoder().decode(data)) as WireEvent;
    } catch {
      return;
    }
    if (event.o === this.#origin) return;
    for (const queue of event.e ?? []) {
      this.#events.emit("event", { type: "enqueued", queue });
    }
    for (const id of event.c ?? []) this.#events.emit("event", { type: "changed", id });
    if (event.x !== undefined)
      this.#events.emit("event", { type: "cancel", id: event.x[0], graceMs: event.x[1] });
  }

  // --- counters --------------------------------------------------------------------------------

  private count(delta: CounterDelta): void {
    let any = false;
    for (const [name, value] of Object.entries(delta) as [keyof CounterDelta, number][]) {
      if (!value) continue;
      this.#counts[name] += value;
      any = true;
    }
    if (any && this.#countsDirty === undefined && !this.#closed) {
      this.#countsDirty = setTimeout(() => {
        this.#countsDirty = undefined;
        void this.flushCounts().catch(() => undefined);
      }, 100);
      this.#countsDirty.unref();
    }
  }

  /** This process's lifetime counters, under a key only it writes. */
  private flushCounts(): Promise<void> {
    return this.#countsWrite.run();
  }
}

/** A queue's settings from its meta entry; none stored: the defaults. */
function queueFromEntry(name: string, entry: KvEntry | null): QueueInfo {
  if (entry === null || entry.operation !== "PUT")
    return { name, paused: false, groupConcurrency: null, groupRate: null };
  const stored = entry.json<Partial<Omit<QueueInfo, "name">>>();
  return {
    name,
    paused: stored.paused ?? false,
    groupConcurrency: stored.groupConcurrency ?? null,
    // Absent from entries written before groupRate existed.
    groupRate: stored.groupRate ?? null,
  };
}

function matches(job: StoredJob, filter: JobFilter): boolean {
  if (filter.state !== undefined && job.state !== filter.state) return false;
  if (filter.queue !== undefined && job.queue !== filter.queue) return false;
  if (filter.owner !== undefined && job.owner !== filter.owner) return false;
  if (filter.handler !== undefined && job.handler !== filter.handler) return false;
  if (filter.label !== undefined && (job.label === null || !likePattern(filter.label).test(job.label)))
    return false;
  return true;
}

/** SQL LIKE (`%`, `_`) as a regular expression, everything else literal. */
function likePattern(pattern: string): RegExp {
  const source = [...pattern]
    .map((c) => (c === "%" ? ".*" : c === "_" ? "." : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`, "s");
}
