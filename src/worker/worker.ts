import { hostname } from "node:os";
import { DEFAULT_STOP_GRACE } from "../core/defaults.js";
import { type Duration, parseDuration } from "../core/duration.js";
import { ErrorCode, invalidArgument } from "../core/errors.js";
import { newJobId } from "../core/ids.js";
import { cancelledError } from "../store/rescue.js";
import type { ClaimedJob, DispatchOffer, Outcome, Store, StoreEvent, WorkerInfo } from "../store/store.js";
import { Attempt, type AttemptHost } from "./attempt.js";
import { captureDetachedErrors } from "./detached-errors.js";
import { TypedEvents, type WorkerEventMap, type WorkerEventName } from "./events.js";
import type { JobDefinition } from "./handler.js";
import { Maintenance } from "./maintenance.js";
import { type Pending, reportWritten } from "./report.js";
import { type WorkerOptions, workerSettings } from "./worker-options.js";

export type { WorkerOptions } from "./worker-options.js";

/**
 * A slot a worker holds for one job launched in this process (direct dispatch): the launch
 * settles it with the job the store wrote already claimed, or with nothing.
 */
export interface DispatchTicket {
  readonly offer: DispatchOffer;
  /** The store dispatched the job: start it now. Undefined: it was stored as usual. */
  settle(job: ClaimedJob | undefined): void;
}

/**
 * Claims jobs, runs their handlers, and records how each attempt ended. Claims are batched up to
 * the free slots; outcomes are batched per tick into one store write; leases are renewed by a
 * heartbeat; timeouts and forced cancels free the slot even if a handler ignores its signal.
 */
export class Worker {
  readonly id = newJobId();
  readonly name: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly #store: Store;
  readonly #handlers: ReadonlyMap<string, JobDefinition<unknown, unknown>>;
  readonly #events = new TypedEvents();
  readonly #running = new Map<string, Attempt>();
  /** Claimed ahead (prefetch), not started yet; leased like running jobs. */
  #buffer: ClaimedJob[] = [];
  readonly #prefetch: number;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  /** What each job's Attempt asks of this worker. */
  readonly #attemptHost: AttemptHost;
  readonly #maintenance: Maintenance | undefined;
  readonly #startedAt = Date.now();
  #state: "idle" | "running" | "stopping" | "stopped" = "idle";
  /** Outcomes waiting for the next store write, with what to report once it applied. */
  #pending: Pending[] = [];
  #pumping = false;
  #pumpScheduled = false;
  #wantPump = false;
  /** Set while the pump backs off after a store error. */
  #endBackoff: (() => void) | undefined;
  #flushWaiters: (() => void)[] = [];
  readonly #handlerNames: string[];
  #pollTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #releaseErrors: (() => void) | undefined;
  #idleWaiters: (() => void)[] = [];
  /** Cancels that arrived before their job did (see rememberCancel). */
  readonly #earlyCancels = new Map<string, { graceMs: number; at: number }>();
  /** The last claim found no more work than it took: launches may be dispatched to this worker. */
  #drained = false;
  /** Slots held for launches offered direct dispatch, not settled yet. */
  #reserved = 0;
  #reservationWaiters: (() => void)[] = [];

  constructor(store: Store, options: WorkerOptions) {
    this.#store = store;
    const settings = workerSettings(options);
    this.queues = settings.queues;
    this.concurrency = settings.concurrency;
    this.#prefetch = settings.prefetch;
    this.name = settings.name;
    this.#leaseMs = settings.leaseMs;
    this.#pollMs = settings.pollMs;
    this.#handlers = settings.handlers;
    this.#handlerNames = [...this.#handlers.keys()];
    this.#attemptHost = {
      errorMaxBytes: settings.errorMaxBytes,
      maxResultBytes: settings.maxResultBytes,
      defaultTimeoutMs: settings.defaultTimeoutMs,
      setProgress: async (lease, fraction) => {
        await this.#store.setProgress(lease, fraction);
      },
      takeEarlyCancel: (id) => {
        const early = this.#earlyCancels.get(id);
        if (early !== undefined) this.#earlyCancels.delete(id);
        return early;
      },
      ended: (attempt, outcome) => this.ended(attempt, outcome),
    };
    if (settings.rescueMs !== undefined) {
      this.#maintenance = new Maintenance(store, settings.rescueMs, {
        workerTtlMs: this.#leaseMs * 3,
        onError: (error, during) => this.#events.emit("error", { error, during }),
        firingGate: settings.firingGate,
      });
    }
  }

  on<K extends WorkerEventName>(name: K, listener: (event: WorkerEventMap[K]) => void): () => void {
    return this.#events.on(name, listener);
  }

  get running(): number {
    return this.#running.size;
  }

  async start(): Promise<void> {
    if (this.#state !== "idle") throw invalidArgument("a worker starts once");
    this.#state = "running";
    this.#releaseErrors = captureDetachedErrors();
    this.#unsubscribe = this.#store.subscribe((event) => this.onStoreEvent(event));
    await this.heartbeat();
    // Not unref'd: a started worker keeps its process alive until stop(), as a listening server does.
    this.#heartbeatTimer = setInterval(
      () => void this.heartbeat(),
      Math.max(100, Math.floor(this.#leaseMs / 3)),
    );
    this.#maintenance?.start();
    this.requestClaim();
  }

  /**
   * Stops claiming, lets running jobs finish for up to `grace` (default 30s), then aborts the rest
   * and returns them to their queue without using an attempt.
   */
  async stop(options: { grace?: Duration } = {}): Promise<void> {
    if (this.#state === "idle") this.#state = "stopped";
    if (this.#state !== "running") return;
    this.#state = "stopping";
    this.#endBackoff?.();
    // Prefetched jobs never started: straight back to their queue, attempt refunded.
    for (const job of this.#buffer.splice(0)) {
      this.#pending.push({ outcome: { kind: "release", id: job.id, fence: job.fence }, job, ms: 0 });
    }
    const graceMs = parseDuration(options.grace ?? DEFAULT_STOP_GRACE, "grace");
    clearTimeout(this.#pollTimer);
    this.#maintenance?.stop();
    if (this.#running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      // A grace timer left running would hold the process open long after the worker stopped.
      clearTimeout(timer);
    }
    for (const running of [...this.#running.values()]) {
      running.context.abort(ErrorCode.Cancelled, "the worker is shutting down");
      running.settle({ kind: "release", id: running.job.id, fence: running.job.fence });
    }
    // A launch in flight may still hand over a job: it must be released before we leave.
    while (this.#reserved > 0) await new Promise<void>((resolve) => this.#reservationWaiters.push(resolve));
    await this.flush();
    clearInterval(this.#heartbeatTimer);
    this.#unsubscribe?.();
    this.#releaseErrors?.();
    await this.#store.removeWorker(this.id).catch(() => undefined);
    this.#state = "stopped";
    this.#events.emit("stopped", {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private info(): WorkerInfo {
    return {
      id: this.id,
      name: this.name,
      host: hostname(),
      pid: process.pid,
      queues: this.queues,
      running: this.#running.size,
      startedAt: this.#startedAt,
      lastHeartbeatAt: Date.now(),
    };
  }

  /** Waits after a store error; news from the store (work enqueued) ends the wait early. */
  private backOff(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#endBackoff = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#endBackoff = done;
    });
  }

  private onStoreEvent(event: StoreEvent): void {
    if (event.type === "enqueued") {
      this.#endBackoff?.();
      if (this.queues.includes(event.queue)) this.requestClaim();
    } else if (event.type === "cancel") {
      const buffered = this.unbuffer(event.id);
      if (buffered !== undefined) this.cancelBuffered(buffered);
      const running = this.#running.get(event.id);
      if (running !== undefined) running.cancel(event.graceMs);
      // Maybe ours but not here yet (its claim is still on the way back): honoured when it lands.
      if (buffered === undefined && running === undefined) this.rememberCancel(event.id, event.graceMs);
    }
  }

  /**
   * Asks the pump to run: at once (microtask) when work may have arrived, or after the current
   * tick (setImmediate) when a job ended, so that all the jobs ending in one tick are recorded
   * in one store write and their slots refilled by one claim.
   */
  private requestClaim(urgent = true): void {
    if (this.#pumping) {
      this.#wantPump = true;
      return;
    }
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    const run = () => {
      this.#pumpScheduled = false;
      void this.pump();
    };
    if (urgent) queueMicrotask(run);
    else setImmediate(run);
  }

  /**
   * The worker's one loop: record finished attempts, then claim up to the free slots, and go
   * round while there is more to do. It yields to the event loop between rounds, so heartbeats
   * and timeouts keep their timers even while a long backlog drains.
   */
  private async pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    let backoff = 50;
    try {
      for (;;) {
        this.#wantPump = false;
        let progressed = false;
        const batch = this.#pending;
        this.#pending = [];
        const finished = batch.map((p) => p.outcome);
        this.startBuffered();
        const room =
          this.concurrency - this.#running.size - this.#reserved + this.#prefetch - this.#buffer.length;
        try {
          if (this.#state === "running" && room > 0) {
            // Hand back what finished and take new work in one store transaction.
            const claimed = await this.#store.claim({
              workerId: this.id,
              queues: this.queues,
              handlers: this.#handlerNames,
              limit: room,
              leaseMs: this.#leaseMs,
              finished,
            });
            reportWritten(this.#events, batch, claimed.applied);
            if (this.#state === "running") {
              this.#buffer.push(...claimed.jobs);
              this.startBuffered();
            } else {
              // Claimed while stopping: hand them straight back.
              for (const job of claimed.jobs) this.runJob(job);
            }
            // A full batch means more may be waiting.
            progressed = claimed.jobs.length === room;
            this.#drained = !progressed;
          } else if (batch.length > 0) {
            reportWritten(this.#events, batch, await this.#store.finish(finished));
          }
          backoff = 50;
        } catch (error) {
          // Keep them: outcomes are fenced, so writing one twice changes nothing.
          this.#pending.unshift(...batch);
          this.#events.emit("error", { error, during: batch.length > 0 ? "finish" : "claim" });
          if (this.#state === "stopped") return;
          await this.backOff(backoff);
          // Capped at the poll interval: a store that comes back is used within one poll.
          backoff = Math.min(backoff * 2, Math.max(this.#pollMs, 250), 5_000);
          continue;
        }
        if (!progressed && !this.#wantPump && this.#pending.length === 0) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#pumping = false;
      if (this.#state === "running") {
        clearTimeout(this.#pollTimer);
        this.#pollTimer = setTimeout(() => this.requestClaim(), this.#pollMs);
        this.#pollTimer.unref();
      }
      for (const wake of this.#flushWaiters.splice(0)) wake();
    }
  }

  /**
   * Offers a free slot for a job launched in this process (see EnqueueContext.dispatch). Only a
   * worker whose last claim found its queues empty offers, with nothing buffered: it would have
   * had nothing else to run first.
   */
  offerSlot(queue: string, handler: string): DispatchTicket | undefined {
    if (this.#state !== "running" || !this.#drained || this.#buffer.length > 0) return undefined;
    if (this.#running.size + this.#reserved >= this.concurrency) return undefined;
    if (!this.queues.includes(queue) || !this.#handlers.has(handler)) return undefined;
    this.#reserved++;
    let settled = false;
    return {
      offer: { workerId: this.id, leaseMs: this.#leaseMs },
      settle: (job) => {
        if (settled) return;
        settled = true;
        this.#reserved--;
        if (this.#reserved === 0) for (const wake of this.#reservationWaiters.splice(0)) wake();
        if (job === undefined) return;
        if (this.#state !== "running") {
          // The worker began stopping meanwhile: hand it straight back (stop() writes that).
          this.#pending.push({ outcome: { kind: "release", id: job.id, fence: job.fence }, job, ms: 0 });
          return;
        }
        // Through the buffer: a claim that landed meanwhile may have taken the free slots.
        this.#buffer.push(job);
        this.startBuffered();
      },
    };
  }

  /** A cancel for a job this worker may be about to receive; forgotten after a minute. */
  private rememberCancel(id: string, graceMs: number): void {
    const now = Date.now();
    for (const [other, { at }] of this.#earlyCancels) if (now - at > 60_000) this.#earlyCancels.delete(other);
    this.#earlyCancels.set(id, { graceMs, at: now });
  }

  /** Starts buffered jobs in the free slots (all of them when nothing is prefetched). */
  private startBuffered(): void {
    while (this.#buffer.length > 0 && this.#running.size < this.concurrency) {
      this.runJob(this.#buffer.shift()!);
    }
    // More than `prefetch` waiting: a dispatched job and a claim crossed, and both took the last
    // slot. The extra goes back to its queue (attempt refunded) instead of waiting here.
    if (this.#buffer.length > this.#prefetch) {
      for (const job of this.#buffer.splice(this.#prefetch)) {
        this.#pending.push({ outcome: { kind: "release", id: job.id, fence: job.fence }, job, ms: 0 });
      }
      this.requestClaim(false);
    }
  }

  /** A buffered job that must not start (cancelled, lease lost): out of the buffer, if there. */
  private unbuffer(id: string): ClaimedJob | undefined {
    const index = this.#buffer.findIndex((job) => job.id === id);
    return index < 0 ? undefined : this.#buffer.splice(index, 1)[0];
  }

  /** Cancelled before it started: recorded as cancelled without running it. */
  private cancelBuffered(job: ClaimedJob): void {
    const error = cancelledError(job.attempt);
    this.#pending.push({ outcome: { kind: "cancelled", id: job.id, fence: job.fence, error }, job, ms: 0 });
    this.requestClaim(false);
  }

  private runJob(job: ClaimedJob): void {
    if (this.#state !== "running") {
      // Claimed while stopping: hand it straight back.
      this.#pending.push({ outcome: { kind: "release", id: job.id, fence: job.fence }, job, ms: 0 });
      return;
    }
    const attempt = new Attempt(job, this.#attemptHost);
    this.#running.set(job.id, attempt);
    if (this.#events.has("job:started")) {
      this.#events.emit("job:started", { id: job.id, handler: job.handler, attempt: job.attempt });
    }
    attempt.run(this.#handlers.get(job.handler));
  }

  /** An attempt ended: free its slot now, record the outcome with the next flush. */
  private ended(attempt: Attempt, outcome: Outcome | undefined): void {
    this.#running.delete(attempt.job.id);
    if (outcome !== undefined) {
      this.#pending.push({ outcome, job: attempt.job, ms: performance.now() - attempt.startedMs });
    }
    if (this.#running.size === 0 && this.#idleWaiters.length > 0) {
      for (const wake of this.#idleWaiters.splice(0)) wake();
    }
    this.requestClaim(false);
  }

  /** Resolves when every recorded outcome has reached the store. */
  private async flush(): Promise<void> {
    while (this.#pending.length > 0 || this.#pumping) {
      if (!this.#pumping) void this.pump();
      await new Promise<void>((resolve) => this.#flushWaiters.push(resolve));
    }
  }

  private async heartbeat(): Promise<void> {
    const leases = [...this.#running.values()].map((r) => ({ id: r.job.id, fence: r.job.fence }));
    for (const job of this.#buffer) leases.push({ id: job.id, fence: job.fence });
    try {
      const answer = await this.#store.heartbeat(this.info(), leases, this.#leaseMs);
      for (const id of answer.lost) {
        const buffered = this.unbuffer(id);
        if (buffered !== undefined) this.#events.emit("job:lease-lost", { id, handler: buffered.handler });
        const running = this.#running.get(id);
        if (running === undefined) continue;
        running.context.abort(ErrorCode.Cancelled, "this worker lost the job's lease");
        this.#events.emit("job:lease-lost", { id, handler: running.job.handler });
        running.settle(undefined);
      }
      for (const { id, graceLeftMs } of answer.cancelRequested) {
        const buffered = this.unbuffer(id);
        if (buffered !== undefined) this.cancelBuffered(buffered);
        const running = this.#running.get(id);
        if (running !== undefined) running.cancel(graceLeftMs);
      }
    } catch (error) {
      this.#events.emit("error", { error, during: "heartbeat" });
    }
  }
}
