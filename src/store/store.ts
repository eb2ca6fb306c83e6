/**
 * The Store contract: every datastore operation Ferry needs, in one interface. SQLite, PostgreSQL
 * and NATS JetStream each implement it, and one conformance suite (test/conformance/) holds them to it.
 *
 * Rules every implementation keeps:
 * - Times are epoch milliseconds on the *store's* clock (`now()`): callers pass durations, never
 *   their own wall-clock time, except `runAt` that a user gave as a Date.
 * - Claiming gives a job to one worker at a time and bumps its `fence`. Every write a worker makes
 *   about a running job names the fence it claimed with; a write with a stale fence changes nothing.
 * - Stores are dumb about policy: retries, backoff and error shaping are decided by the worker and
 *   handed over as an `Outcome`. The one exception is the rescuer, which applies the same shared
 *   rule (src/core/retry.ts) to attempts whose worker vanished. The little a store adds when it
 *   records an outcome (a cancel request beats a retry, the error kept, retention) is shared too:
 *   src/store/finish-rules.ts.
 * - Payloads and results are opaque bytes, encoded by the job's serializer.
 */
import type { GroupRate } from "../core/group-rate.js";
import type { ErrorInfo, JobPolicy, JobState, Progress } from "../core/job.js";

export interface NewJob {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  readonly payload: Uint8Array;
  readonly serializer: string;
  /** SHA-256 of the cookie; null for submitted (fire-and-forget) jobs, which no handle reaches. */
  readonly cookieHash: Uint8Array | null;
  readonly owner: string | null;
  readonly priority: number;
  /** Run no earlier than this many ms after the store's now. */
  readonly delayMs: number;
  /** Or at this absolute time (a Date the user gave); wins over delayMs. */
  readonly runAt: number | null;
  readonly maxAttempts: number;
  readonly policy: JobPolicy;
  readonly uniqueKey: string | null;
  readonly label: string | null;
  readonly group: string | null;
  /** Ids of jobs that must complete first. If one fails or is cancelled, this job fails. */
  readonly dependsOn: readonly string[];
  /** Drop the result when finished (submit, detach). */
  readonly detached: boolean;
}

export interface EnqueueResult {
  readonly id: string;
  /** true: an unfinished job held the uniqueKey; nothing was stored and `id` is that job's. */
  readonly deduplicated: boolean;
  /** Set when the store honoured `EnqueueContext.dispatch`: the job was written already claimed. */
  readonly claimed?: ClaimedJob;
}

/** A job as stored. `payload`/`result` are null once consumed, detached or pruned. */
export interface JobRecord {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  /** As stored; a `scheduled` job whose runAt has passed is reported as `queued` by the API. */
  readonly state: JobState;
  readonly priority: number;
  readonly owner: string | null;
  readonly label: string | null;
  readonly group: string | null;
  readonly uniqueKey: string | null;
  readonly serializer: string;
  readonly payload: Uint8Array | null;
  readonly cookieHash: Uint8Array | null;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly policy: JobPolicy;
  readonly progress: Progress | null;
  readonly launchedAt: number;
  readonly runAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly result: Uint8Array | null;
  readonly error: ErrorInfo | null;
  readonly consumed: boolean;
  readonly detached: boolean;
  readonly cancelRequested: boolean;
  readonly fence: number;
  readonly workerId: string | null;
  readonly leaseExpiresAt: number | null;
}

export interface ClaimRequest {
  readonly workerId: string;
  /** In order of preference; paused queues are skipped. */
  readonly queues: readonly string[];
  /** Only jobs for these handlers are claimed (a worker never takes work it cannot do). */
  readonly handlers: readonly string[];
  readonly limit: number;
  readonly leaseMs: number;
  /**
   * Outcomes to record first, in the same transaction (or round trip) where the store can: a
   * worker hands back the jobs it finished and takes new ones in one step. Recorded exactly as
   * `finish` would, fencing included.
   */
  readonly finished?: readonly Outcome[];
}

export interface ClaimResult {
  /** The jobs now held by the worker. */
  readonly jobs: ClaimedJob[];
  /** For each of `request.finished`, in order: whether it applied (false: fenced off). */
  readonly applied: boolean[];
}

/** A claimed job: state `running`, attempts already counted, fence bumped. */
export interface ClaimedJob {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  readonly payload: Uint8Array;
  readonly serializer: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly policy: JobPolicy;
  readonly fence: number;
  readonly label: string | null;
  readonly group: string | null;
  readonly launchedAt: number;
  readonly startedAt: number;
  readonly cancelRequested: boolean;
}

interface Fenced {
  readonly id: string;
  readonly fence: number;
}

/** How an attempt ended, as the worker decided. */
export type Outcome =
  | (Fenced & { readonly kind: "completed"; readonly result: Uint8Array | null })
  /** Final failure: attempts used up, or not retryable. */
  | (Fenced & { readonly kind: "failed"; readonly error: ErrorInfo; readonly timedOut: boolean })
  /** Failed attempt, run again after delayMs. */
  | (Fenced & {
      readonly kind: "retry";
      readonly error: ErrorInfo;
      readonly delayMs: number;
      readonly timedOut: boolean;
    })
  /** Run again after delayMs without using an attempt. */
  | (Fenced & { readonly kind: "snooze"; readonly delayMs: number })
  | (Fenced & { readonly kind: "cancelled"; readonly error: ErrorInfo })
  /** Worker shutting down: back to the queue now, attempt refunded. */
  | (Fenced & { readonly kind: "release" });

export interface LeaseRef extends Fenced {}

export interface WorkerInfo {
  readonly id: string;
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  readonly queues: readonly string[];
  readonly running: number;
  readonly startedAt: number;
  readonly lastHeartbeatAt: number;
}

export interface HeartbeatResult {
  /** Leases this worker no longer holds (rescued, cancelled, or fenced off): stop those handlers. */
  readonly lost: readonly string[];
  /** Jobs still held whose cancellation was requested, with the grace left before it is forced. */
  readonly cancelRequested: readonly { readonly id: string; readonly graceLeftMs: number }[];
}

export interface CancelResult {
  /** State after the request; undefined when there is no such job. */
  readonly state: JobState | undefined;
}

export interface JobFilter {
  readonly state?: JobState | undefined;
  readonly queue?: string | undefined;
  /** SQL LIKE pattern: `%` any run, `_` one character. */
  readonly label?: string | undefined;
  readonly owner?: string | undefined;
  readonly handler?: string | undefined;
}

export interface ListRequest extends JobFilter {
  /** Keyset pagination: ids strictly after this one (ids sort by launch time). */
  readonly afterId?: string | undefined;
  readonly limit: number;
}

export interface PurgeRequest {
  readonly state?: "completed" | "failed" | "cancelled" | undefined;
  readonly olderThanMs: number;
}

export interface QueueInfo {
  readonly name: string;
  readonly paused: boolean;
  readonly groupConcurrency: number | null;
  /** At most `limit` starts of one group's jobs per fixed window of `periodMs` (src/core/group-rate.ts). */
  readonly groupRate: GroupRate | null;
}

/** A queue's group settings; a field left out is left as it is. */
export interface QueueOptionsUpdate {
  readonly groupConcurrency?: number | null;
  readonly groupRate?: GroupRate | null;
}

export interface StoreStats {
  /** queue -> state -> count, for jobs still stored. */
  readonly byQueue: Readonly<Record<string, Readonly<Partial<Record<JobState, number>>>>>;
  /** Counters since the store was created (not reduced by purging). */
  readonly launched: number;
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly timedOut: number;
  /** Mean run time of completed attempts, in ms. */
  readonly avgRunMs: number;
}

export type ScheduleSpec =
  | { readonly kind: "cron"; readonly cron: string; readonly tz: string }
  | { readonly kind: "every"; readonly everyMs: number };

export interface ScheduleRecord {
  readonly id: string;
  readonly name: string;
  readonly handler: string;
  readonly spec: ScheduleSpec;
  /** Fires left; null = forever. */
  readonly repeatLeft: number | null;
  readonly payload: Uint8Array;
  readonly serializer: string;
  /** The launch options each fired job gets, as JSON. */
  readonly options: string;
  readonly owner: string | null;
  readonly paused: boolean;
  /** Why the scheduler paused it (its owner may not start its handler); null when a user did, or not paused. */
  readonly pausedReason: string | null;
  readonly nextRunAt: number | null;
  readonly lastFiredAt: number | null;
  readonly createdAt: number;
}

/** An upsert also clears `pausedReason`. */
export type ScheduleInput = Omit<ScheduleRecord, "lastFiredAt" | "createdAt" | "pausedReason">;

export interface SchedulePatch {
  readonly spec?: ScheduleSpec;
  readonly repeatLeft?: number | null;
  readonly nextRunAt?: number | null;
  readonly paused?: boolean;
  /** Written when given: the callers set it with every change of `paused`. */
  readonly pausedReason?: string | null;
}

/**
 * What firing one due schedule produces: the job to enqueue and the schedule's next time
 * (null: the schedule is done); or, when its owner may not start it now, the reason to pause it
 * instead (nothing is enqueued and its next time stays, so a resume fires the missed tick once).
 */
export type ScheduleFiring = ScheduleJobFiring | ScheduleHold;

export interface ScheduleJobFiring {
  readonly job: NewJob;
  readonly nextRunAt: number | null;
}

export interface ScheduleHold {
  readonly pause: string;
}

export type StoreEvent =
  /** Work is available in a queue (a launch, a retry, a release). */
  | { readonly type: "enqueued"; readonly queue: string }
  /** A job's state or progress changed. */
  | { readonly type: "changed"; readonly id: string }
  /** Cancellation of a running job was requested. */
  | { readonly type: "cancel"; readonly id: string; readonly graceMs: number };

export interface EnqueueContext {
  /** PostgreSQL only: a client inside the caller's open transaction. */
  readonly tx?: unknown;
  /**
   * Direct dispatch: an idle worker in this process offers to take the job at once. A store may
   * write the job already claimed by that worker (state `running`, attempt 1, fence bumped, lease
   * set, exactly as `claim` would), saving the claim's round trip: launch to start is then one
   * commit. Only for one job with no delay, dependencies or group, and only if its queue is open
   * (not paused, no group limit) at the moment of the write; otherwise the job is stored as usual.
   * Optional: a store that ignores it stays correct (the worker claims the job in its next round).
   */
  readonly dispatch?: DispatchOffer;
}

/** A worker's offer to take a launched job directly (see EnqueueContext.dispatch). */
export interface DispatchOffer {
  readonly workerId: string;
  readonly leaseMs: number;
}

/**
 * The daemon's users, roles and token hashes, as one document it encodes itself (src/auth/). One
 * document with a revision, written by compare-and-set, so that invariants spanning users (the
 * last admin stays) hold across daemons sharing a store, on every backend alike.
 */
export interface AccessDocument {
  /** Grows with every write; never 0 once written. */
  readonly revision: number;
  readonly data: Uint8Array;
}

export interface Store {
  /** "sqlite", "postgres" or "nats". */
  readonly kind: string;
  /**
   * True when events reach every process sharing the store (LISTEN/NOTIFY, NATS subjects). When
   * false (SQLite), events reach only this process and callers poll as well.
   */
  readonly sharedEvents: boolean;
  /**
   * Optional: what opening the store found and changed that an operator should hear of (SQLite:
   * database files open to their group or others, narrowed to 0600). The daemon logs each one.
   */
  readonly notices?: readonly string[];

  /** Create or upgrade the schema to the latest version. Idempotent; safe when run concurrently. Answers the version. */
  migrate(): Promise<number>;
  /** The store's clock, epoch ms. */
  now(): Promise<number>;
  close(): Promise<void>;

  // --- launching ---------------------------------------------------------------------------
  /** Insert all jobs or none. uniqueKey conflicts with an unfinished job store nothing for that job. */
  enqueue(jobs: readonly NewJob[], context?: EnqueueContext): Promise<EnqueueResult[]>;

  // --- reading -----------------------------------------------------------------------------
  /** One job, or undefined. The API checks the cookie hash; stores never see cookies. */
  getJob(id: string): Promise<JobRecord | undefined>;
  /** Several jobs at once (missing ids are absent from the answer). */
  getJobs(ids: readonly string[]): Promise<JobRecord[]>;
  /** One page of jobs matching the filter, by id ascending. Records omit `result`. */
  listJobs(request: ListRequest): Promise<JobRecord[]>;
  stats(): Promise<StoreStats>;
  /**
   * How many of `owner`'s jobs are unfinished (scheduled, queued or running), counting no further
   * than `limit`: per-user quotas ask whether a user is at its limit, not how far past it.
   */
  countActive(owner: string, limit: number): Promise<number>;

  // --- the owner's controls ----------------------------------------------------------------
  /**
   * Atomically hand out a finished job's result once: marks it consumed and drops the stored
   * payload and result. "not_finished" and "consumed" change nothing.
   */
  consumeResult(
    id: string,
  ): Promise<
    | { readonly status: "ok"; readonly record: JobRecord }
    | { readonly status: "not_finished" | "consumed" | "missing" }
  >;
  /**
   * Cancel: a scheduled/queued job becomes cancelled at once; a running one is flagged and an
   * event is sent to its worker, which aborts it and forces it after the grace period.
   */
  requestCancel(id: string, graceMs: number): Promise<CancelResult>;
  /** Cancel every unfinished job matching the filter; answers how many were reached. */
  cancelMany(filter: JobFilter, graceMs: number): Promise<number>;
  /** Forget the handle: the cookie hash is dropped and the result will not be kept. */
  detach(id: string): Promise<boolean>;
  detachMany(filter: JobFilter): Promise<number>;
  /** Re-queue a failed or cancelled job with fresh attempts. */
  retry(id: string): Promise<boolean>;
  /** Delete finished jobs older than the given age; answers how many. */
  purge(request: PurgeRequest): Promise<number>;

  // --- queues ------------------------------------------------------------------------------
  setQueuePaused(queue: string, paused: boolean): Promise<void>;
  setQueueOptions(queue: string, options: QueueOptionsUpdate): Promise<void>;
  listQueues(): Promise<QueueInfo[]>;

  // --- workers -----------------------------------------------------------------------------
  /** Claim up to `limit` runnable jobs: due, unpaused, dependencies met, group limits kept. */
  claim(request: ClaimRequest): Promise<ClaimResult>;
  /** Record attempt outcomes; each entry answers whether it applied (false: fenced off). */
  finish(outcomes: readonly Outcome[]): Promise<boolean[]>;
  /** Renew the leases this worker holds and refresh its registry entry. */
  heartbeat(worker: WorkerInfo, leases: readonly LeaseRef[], leaseMs: number): Promise<HeartbeatResult>;
  /** Report progress of a running attempt; false when the fence is stale. */
  setProgress(lease: LeaseRef, progress: Progress): Promise<boolean>;
  /**
   * Rescue jobs whose lease expired: re-queue them (the attempt stays counted), or fail them when
   * attempts are used up, or cancel them when cancellation was asked. Also expires old workers.
   */
  rescueExpired(
    workerTtlMs: number,
  ): Promise<{ readonly requeued: number; readonly failed: number; readonly cancelled: number }>;
  /** Delete finished jobs whose retention ended (consumed, detached or past their result TTL). */
  pruneExpired(limit: number): Promise<number>;
  removeWorker(workerId: string): Promise<void>;
  listWorkers(): Promise<WorkerInfo[]>;

  // --- schedules ---------------------------------------------------------------------------
  /** Create, or replace the schedule with the same name. */
  upsertSchedule(schedule: ScheduleInput): Promise<ScheduleRecord>;
  getSchedule(id: string): Promise<ScheduleRecord | undefined>;
  listSchedules(): Promise<ScheduleRecord[]>;
  updateSchedule(id: string, patch: SchedulePatch): Promise<ScheduleRecord | undefined>;
  deleteSchedule(id: string): Promise<boolean>;
  /**
   * Fire each due, unpaused schedule exactly once across all processes: enqueue the job `fire`
   * makes and move the schedule to its next time in one atomic step, or, when `fire` holds it
   * back, pause it with that reason and enqueue nothing. Answers how many fired.
   */
  fireDueSchedules(fire: (schedule: ScheduleRecord, now: number) => ScheduleFiring): Promise<number>;

  // --- access control (the daemon's users and tokens) ---------------------------------------
  /** The access document, or undefined when none was ever written. */
  readAccess(): Promise<AccessDocument | undefined>;
  /**
   * Replace the access document if its revision is still `expectedRevision` (0: none written yet).
   * Answers the new revision, or null when another writer came first (then nothing changed).
   */
  writeAccess(data: Uint8Array, expectedRevision: number): Promise<number | null>;

  // --- events ------------------------------------------------------------------------------
  /**
   * Optional, for stores with shared events: somebody (maybe in another process) waits on these
   * jobs, so announce their changes to every process. Stores may skip announcing changes of jobs
   * nobody marked (a worker's hot path), except to their own process.
   */
  markWatched?(ids: readonly string[]): Promise<void>;
  /** Listen for store events; answers an unsubscribe function. Listener errors are swallowed. */
  subscribe(listener: (event: StoreEvent) => void): () => void;
}
