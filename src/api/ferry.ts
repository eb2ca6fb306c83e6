import { DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_STORE_URL } from "../core/defaults.js";
import { type Duration, parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, invalidArgument, notFound } from "../core/errors.js";
import { parseGroupRate } from "../core/group-rate.js";
import { cookieMatches, isCookie, isJobId } from "../core/ids.js";
import {
  type Handle,
  isFinished,
  type JobListRow,
  type JobResult,
  type JobState,
  type JobStatus,
  type LaunchedHandle,
} from "../core/job.js";
import { checkQueueName } from "../core/names.js";
import type { LaunchOptions } from "../core/options.js";
import { defaultSerializerName, getSerializer } from "../serializers/index.js";
import { canDispatch } from "../store/dispatch.js";
import { openStore } from "../store/open.js";
import type {
  ClaimedJob,
  EnqueueResult,
  JobRecord,
  NewJob,
  Store,
  StoreStats,
  WorkerInfo,
} from "../store/store.js";
import type { JobDefinition } from "../worker/handler.js";
import { type DispatchTicket, Worker, type WorkerOptions } from "../worker/worker.js";
import type {
  FollowOptions,
  LaunchEachItem,
  LaunchItem,
  LaunchSettled,
  ListFilter,
  OpenOptions,
  Outcome,
  OwnerScope,
  ResultOrState,
  RetryOptions,
  ScopedWaitOptions,
  WatchEvent,
} from "./api-types.js";
import type { FerryCaller } from "./caller.js";
import { ChangeWaiter } from "./change-waiter.js";
import { collect } from "./collect.js";
import { checkGrace, toStoreFilter } from "./filters.js";
import { type LaunchContext, type PreparedLaunch, parentIdsOf, prepareLaunch } from "./prepare-launch.js";
import { runWaitMs } from "./run-wait.js";
import { Schedules } from "./schedules.js";
import { FerryScope } from "./scoped.js";
import { toListRow, toStatus } from "./views.js";
import { followRecord, type WaitLoopContext, waitUntil, withAdmission } from "./wait-loop.js";

export type {
  AdmitWait,
  FollowOptions,
  LaunchEachItem,
  LaunchItem,
  LaunchSettled,
  ListFilter,
  OpenOptions,
  Outcome,
  OwnerScope,
  QueueOptions,
  ResultOrState,
  RetryOptions,
  ScopedWaitOptions,
  WatchEvent,
} from "./api-types.js";

/** The library: launch jobs, follow them, collect their results, and run workers. */
export class Ferry implements FerryCaller {
  readonly store: Store;
  readonly schedules: Schedules;
  readonly #ownsStore: boolean;
  readonly #defaultSerializer: string;
  readonly #queueSerializers = new Map<string, string>();
  readonly #maxPayloadBytes: number;
  readonly #waiter: ChangeWaiter;
  readonly #workers = new Set<Worker>();
  readonly #launchContext: LaunchContext;
  readonly #loops: WaitLoopContext;
  #closed = false;

  private constructor(store: Store, ownsStore: boolean, options: OpenOptions) {
    this.store = store;
    this.#ownsStore = ownsStore;
    this.#defaultSerializer = options.serializer ?? defaultSerializerName();
    getSerializer(this.#defaultSerializer);
    this.#maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.#waiter = new ChangeWaiter(store);
    this.#loops = {
      store,
      waiter: this.#waiter,
      ensureOpen: () => this.open(),
      closed: () => this.#closed,
    };
    this.#launchContext = {
      serializerFor: (queue, own) => this.serializerFor(queue, own),
      maxPayloadBytes: this.#maxPayloadBytes,
    };
    this.schedules = new Schedules(
      store,
      (queue, serializer) => this.serializerFor(queue, serializer),
      this.#maxPayloadBytes,
      () => this.open(),
    );
  }

  static async open(options: OpenOptions = {}): Promise<Ferry> {
    const target = options.store ?? process.env.FERRY_STORE ?? DEFAULT_STORE_URL;
    const store =
      typeof target === "string"
        ? await openStore(target, options.durable === undefined ? {} : { durable: options.durable })
        : target;
    try {
      if (options.migrate !== false) await store.migrate();
      const ferry = new Ferry(store, typeof target === "string", options);
      for (const [queue, queueOptions] of Object.entries(options.queues ?? {})) {
        checkQueueName(queue);
        if (queueOptions.serializer !== undefined) {
          getSerializer(queueOptions.serializer);
          ferry.#queueSerializers.set(queue, queueOptions.serializer);
        }
        const { groupConcurrency, groupRate } = queueOptions;
        if (groupConcurrency !== undefined) {
          if (!Number.isInteger(groupConcurrency) || groupConcurrency < 1 || groupConcurrency > 10_000)
            throw invalidArgument("groupConcurrency must be 1 to 10000");
        }
        const rate = groupRate === undefined ? undefined : parseGroupRate(groupRate);
        if (groupConcurrency !== undefined || rate !== undefined) {
          await store.setQueueOptions(queue, {
            ...(groupConcurrency === undefined ? {} : { groupConcurrency }),
            ...(rate === undefined ? {} : { groupRate: rate }),
          });
        }
      }
      return ferry;
    } catch (error) {
      if (typeof target === "string") await store.close();
      throw error;
    }
  }

  private serializerFor(queue: string, own: string | null): string {
    return own ?? this.#queueSerializers.get(queue) ?? this.#defaultSerializer;
  }

  private open(): void {
    if (this.#closed) throw new FerryError(ErrorCode.StoreUnavailable, "this Ferry is closed");
  }

  // --- launching -----------------------------------------------------------------------------

  /** Stores a job and answers its handle `{ id, cookie }`. Keep the cookie: every later call needs it. */
  async launch<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options?: LaunchOptions,
  ): Promise<LaunchedHandle> {
    const [handle] = await this.launchItems(
      [{ handler: handler as LaunchItem["handler"], payload, ...(options ? { options } : {}) }],
      false,
      options?.tx,
    );
    return handle!;
  }

  /** Fire-and-forget: the job runs, its result is dropped, and no handle reaches it. */
  async submit<P>(
    handler: string | JobDefinition<P, unknown>,
    payload?: P,
    options?: LaunchOptions,
  ): Promise<{ id: string; deduplicated: boolean }> {
    const [handle] = await this.launchItems(
      [{ handler: handler as LaunchItem["handler"], payload, ...(options ? { options } : {}) }],
      true,
      options?.tx,
    );
    return { id: handle!.id, deduplicated: handle!.deduplicated };
  }

  /** Launches all in one store transaction: all are stored or none. */
  async launchMany(items: readonly LaunchItem[]): Promise<LaunchedHandle[]> {
    if (!Array.isArray(items)) throw invalidArgument("launchMany takes an array");
    if (items.length > 100_000) throw invalidArgument("launchMany takes at most 100000 jobs at once");
    const tx = items.find((i) => i.options?.tx !== undefined)?.options?.tx;
    return this.launchItems(items, false, tx);
  }

  /**
   * Launches each job on its own terms, in one store transaction: a job refused before it is
   * stored (invalid payload, unknown parent, …) fails alone and the rest are stored together.
   * For producers that batch independent launches, as the daemon does with the remote client's
   * coalesced calls; `launchMany` is the all-or-nothing kind.
   */
  async launchEach(items: readonly LaunchEachItem[]): Promise<LaunchSettled[]> {
    this.open();
    if (!Array.isArray(items)) throw invalidArgument("launchEach takes an array");
    if (items.length > 100_000) throw invalidArgument("launchEach takes at most 100000 jobs at once");
    const settled: LaunchSettled[] = new Array(items.length);
    const prepared: PreparedLaunch[] = [];
    const slots: number[] = [];
    for (const [index, item] of items.entries()) {
      try {
        if (item.options?.tx !== undefined)
          throw invalidArgument("launchEach commits in its own transaction");
        prepared.push(await this.prepareItem(item, item.submit === true));
        slots.push(index);
      } catch (error) {
        if (!(error instanceof FerryError)) throw error;
        settled[index] = { ok: false, error };
      }
    }
    if (prepared.length > 0) {
      const handles = await this.enqueuePrepared(prepared, undefined);
      for (const [k, handle] of handles.entries()) settled[slots[k]!] = { ok: true, handle };
    }
    return settled;
  }

  private async launchItems(
    items: readonly LaunchItem[],
    detached: boolean,
    tx: unknown,
  ): Promise<LaunchedHandle[]> {
    this.open();
    const prepared: PreparedLaunch[] = [];
    for (const item of items) prepared.push(await this.prepareItem(item, detached));
    return this.enqueuePrepared(prepared, tx);
  }

  /** One launch checked and built; its parents by handle, in the launch's owner's scope, once each. */
  private prepareItem(item: LaunchItem, detached: boolean): PreparedLaunch | Promise<PreparedLaunch> {
    const dependsOn = item.options?.dependsOn;
    // Most launches have none: they skip the await, which bulk launches would pay per job.
    if (dependsOn === undefined) return prepareLaunch(item, detached, [], this.#launchContext);
    return parentIdsOf(dependsOn, item.options?.owner, (h) => this.owned(h)).then((parents) =>
      prepareLaunch(item, detached, parents, this.#launchContext),
    );
  }

  private async enqueuePrepared(prepared: readonly PreparedLaunch[], tx: unknown): Promise<LaunchedHandle[]> {
    // One job launched where one of our workers idles on its queue: the store may hand it over
    // already claimed, and it starts without waiting for the worker's next claim.
    const ticket =
      prepared.length === 1 && tx === undefined ? this.dispatchTicket(prepared[0]!.job) : undefined;
    let results: EnqueueResult[];
    let claimed: ClaimedJob | undefined;
    try {
      results = await this.store.enqueue(
        prepared.map((p) => p.job),
        tx !== undefined ? { tx } : ticket !== undefined ? { dispatch: ticket.offer } : {},
      );
      claimed = results[0]?.claimed;
    } finally {
      ticket?.settle(claimed);
    }
    return results.map((r, i) =>
      r.deduplicated
        ? { id: r.id, cookie: "", deduplicated: true }
        : { id: r.id, cookie: prepared[i]!.cookie, deduplicated: false },
    );
  }

  /** A free slot in one of this Ferry's workers for a job it could take at once, if any. */
  private dispatchTicket(job: NewJob): DispatchTicket | undefined {
    if (!canDispatch(job)) return undefined;
    for (const worker of this.#workers) {
      const ticket = worker.offerSlot(job.queue, job.handler);
      if (ticket !== undefined) return ticket;
    }
    return undefined;
  }

  // --- one job, by handle ---------------------------------------------------------------------

  /**
   * The job behind a handle, in one read; a wrong cookie, an unknown id and (with `owner`)
   * another owner's job all answer FERRY_NOT_FOUND, after the same work.
   */
  private async owned(handle: Handle, owner?: string): Promise<JobRecord> {
    this.open();
    if (handle === null || typeof handle !== "object") throw invalidArgument("a handle is { id, cookie }");
    const { id, cookie } = handle;
    if (!isJobId(id) || !isCookie(cookie)) {
      // Same work as a real check, so malformed and wrong handles take the same time.
      cookieMatches(typeof cookie === "string" ? cookie : "", null);
      throw notFound();
    }
    const record = await this.store.getJob(id);
    // The cookie is checked first whatever the owner: another owner's job costs what a wrong cookie does.
    const cookieOk = cookieMatches(cookie, record?.cookieHash);
    if (!cookieOk || (owner !== undefined && record!.owner !== owner)) throw notFound();
    return record!;
  }

  /** This Ferry for one owner's calls: see `FerryScope`. Admins use the unscoped Ferry. */
  as(owner: string): FerryScope {
    if (typeof owner !== "string" || owner === "") throw invalidArgument("an owner is a non-empty string");
    return new FerryScope(this, owner);
  }

  /** State, attempts, progress and times. Does not consume the result. */
  async status(handle: Handle, options: OwnerScope = {}): Promise<JobStatus> {
    const record = await this.owned(handle, options.owner);
    return toStatus(record, await this.store.now());
  }

  /** Waits until the job is finished (or `timeout`, then FERRY_TIMEOUT). Does not consume. */
  async wait(handle: Handle, options: ScopedWaitOptions = {}): Promise<JobStatus> {
    const [status] = await this.waitFor([handle], "all", options);
    return status!;
  }

  /** The first of several jobs to finish. */
  async waitAny(
    handles: readonly Handle[],
    options: ScopedWaitOptions = {},
  ): Promise<{ index: number; handle: Handle; status: JobStatus }> {
    if (handles.length === 0) throw invalidArgument("waitAny needs at least one handle");
    const statuses = await this.waitFor(handles, "any", options);
    const index = statuses.findIndex((s) => isFinished(s.state));
    return { index, handle: handles[index]!, status: statuses[index]! };
  }

  /** Waits until all of them are finished. */
  async drain(handles: readonly Handle[], options: ScopedWaitOptions = {}): Promise<JobStatus[]> {
    if (handles.length === 0) return [];
    return this.waitFor(handles, "all", options);
  }

  private async waitFor(
    handles: readonly Handle[],
    until: "any" | "all",
    { owner, admit, ...options }: ScopedWaitOptions,
  ): Promise<JobStatus[]> {
    const records = [];
    for (const handle of handles) records.push(await this.owned(handle, owner));
    const signal = withAdmission(options.signal, admit);
    return waitUntil(this.#loops, records, until, { ...options, ...(signal ? { signal } : {}) });
  }

  /** A finished job's result, handed out once: `{ state, value | error, attempts, … }`. */
  async result<T = unknown>(handle: Handle, options: OwnerScope = {}): Promise<JobResult<T>> {
    return collect<T>(this.store, await this.owned(handle, options.owner));
  }

  /**
   * A finished job's result (collected, as `result`), or an unfinished one's id and state, from
   * one read of the job. Errors throw as `result`'s do; `outcome` answers them instead.
   */
  async resultOrState<T = unknown>(handle: Handle, options: OwnerScope = {}): Promise<ResultOrState<T>> {
    for (;;) {
      const record = await this.owned(handle, options.owner);
      try {
        return await collect<T>(this.store, record);
      } catch (error) {
        if (!(error instanceof FerryError && error.code === ErrorCode.NotFinished)) throw error;
      }
      const status = toStatus(record, await this.store.now());
      // Read finished, then retried before the collect: read it again.
      if (!isFinished(status.state)) return { id: status.id, state: status.state as "queued" };
    }
  }

  /** Like result, but never throws: unfinished jobs answer their state, bad handles `not_found`. */
  async outcome<T = unknown>(handle: Handle, options: OwnerScope = {}): Promise<Outcome<T>> {
    try {
      return await this.resultOrState<T>(handle, options);
    } catch (error) {
      const ferryError = FerryError.from(error, ErrorCode.StoreUnavailable);
      const state =
        ferryError.code === ErrorCode.NotFound || ferryError.code === ErrorCode.InvalidArgument
          ? "not_found"
          : "unavailable";
      return { state, error: { code: ferryError.code, message: ferryError.message } };
    }
  }

  /** Launch, wait and collect in one call. On timeout the job is cancelled and FERRY_TIMEOUT thrown. */
  async run<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options: LaunchOptions & { wait?: Duration } = {},
  ): Promise<JobResult<R>> {
    const { wait, ...launchOptions } = options;
    const jobTimeout =
      launchOptions.timeout ?? (typeof handler === "string" ? undefined : handler.defaults.timeout);
    const waitMs = runWaitMs(wait, jobTimeout);
    const handle = await this.launch(handler, payload, launchOptions);
    try {
      await this.wait(handle, waitMs === undefined ? {} : { timeout: waitMs });
    } catch (error) {
      if (error instanceof FerryError && error.code === ErrorCode.Timeout) {
        await this.cancel(handle, { grace: 0 }).catch(() => undefined);
      }
      throw error;
    }
    const result = await this.result<R>(handle);
    if (result.error?.code === ErrorCode.Timeout)
      throw new FerryError(ErrorCode.Timeout, result.error.message);
    return result;
  }

  /**
   * Cancels: a waiting job at once; a running one gets its signal aborted and is forced after
   * `grace` (default 5s, at most 1h). Answers the state after the request.
   */
  async cancel(handle: Handle, options: OwnerScope & { grace?: Duration } = {}): Promise<JobState> {
    const graceMs = checkGrace(options.grace);
    const record = await this.owned(handle, options.owner);
    const answer = await this.store.requestCancel(record.id, graceMs);
    if (answer.state === undefined) throw notFound();
    return answer.state;
  }

  /** Forgets the handle: the job runs on, its result is dropped, the handle reaches nothing after. */
  async detach(handle: Handle, options: OwnerScope = {}): Promise<void> {
    const record = await this.owned(handle, options.owner);
    await this.store.detach(record.id);
  }

  /** Re-queues a failed or cancelled job with fresh attempts. */
  async retry(handle: Handle, options: RetryOptions = {}): Promise<void> {
    const record = await this.owned(handle, options.owner);
    await options.before?.({ id: record.id, handler: record.handler });
    if (!(await this.store.retry(record.id))) {
      throw invalidArgument(
        "only a failed or cancelled job can be retried, and only while its result is uncollected, " +
          "no unfinished job holds its uniqueKey and none of its parents failed",
      );
    }
  }

  /** State and progress changes until the job finishes (or `signal` aborts: then it throws its reason). */
  async *watch(handle: Handle, options: FollowOptions = {}): AsyncGenerator<WatchEvent> {
    for await (const { state, progress, attempts } of this.follow(handle, options)) {
      yield { state, progress, attempts };
    }
  }

  /** As `watch`, each change answered as the job's whole status (one read per change). */
  async *follow(handle: Handle, options: FollowOptions = {}): AsyncGenerator<JobStatus> {
    const first = await this.owned(handle, options.owner);
    yield* followRecord(this.#loops, first, withAdmission(options.signal, options.admit));
  }

  // --- many jobs ------------------------------------------------------------------------------

  /** Every stored job matching the filter, oldest first, fetched a page at a time. */
  async *list(filter: ListFilter = {}): AsyncGenerator<JobListRow> {
    this.open();
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    if (!(limit >= 0)) throw invalidArgument("limit must be a non-negative number");
    const storeFilter = toStoreFilter(filter);
    if (filter.afterId !== undefined && (typeof filter.afterId !== "string" || filter.afterId.length > 64)) {
      throw invalidArgument("afterId must be a job id");
    }
    let afterId = filter.afterId;
    let given = 0;
    while (given < limit) {
      const pageSize = Math.min(200, limit - given);
      const page = await this.store.listJobs({ ...storeFilter, afterId, limit: pageSize });
      const now = await this.store.now();
      for (const record of page) {
        yield toListRow(record, now, filter.previews ?? true);
        given += 1;
      }
      if (page.length < pageSize) return;
      afterId = page[page.length - 1]!.id;
    }
  }

  /** Cancels every unfinished job matching the filter (e.g. `{ label: "nightly-%" }`). Answers how many. */
  async cancelAll(filter: Omit<ListFilter, "limit"> & { grace?: Duration } = {}): Promise<number> {
    this.open();
    return this.store.cancelMany(toStoreFilter(filter), checkGrace(filter.grace));
  }

  /** Detaches every job matching the filter. Answers how many. */
  async detachAll(filter: Omit<ListFilter, "limit"> = {}): Promise<number> {
    this.open();
    return this.store.detachMany(toStoreFilter(filter));
  }

  /** Deletes finished jobs older than `olderThan`. Answers how many. */
  async purge(options: {
    state?: "completed" | "failed" | "cancelled";
    olderThan: Duration;
  }): Promise<number> {
    this.open();
    if (options.state !== undefined && !["completed", "failed", "cancelled"].includes(options.state)) {
      throw invalidArgument("purge takes a finished state: completed, failed or cancelled");
    }
    return this.store.purge({
      state: options.state,
      olderThanMs: parseDuration(options.olderThan, "olderThan"),
    });
  }

  async stats(): Promise<StoreStats> {
    this.open();
    return this.store.stats();
  }

  /** Workers that heartbeat into this store. */
  async *workers(): AsyncGenerator<WorkerInfo> {
    this.open();
    for (const worker of await this.store.listWorkers()) yield worker;
  }

  async pauseQueue(queue: string): Promise<void> {
    this.open();
    await this.store.setQueuePaused(checkQueueName(queue), true);
  }

  async resumeQueue(queue: string): Promise<void> {
    this.open();
    await this.store.setQueuePaused(checkQueueName(queue), false);
  }

  // --- for a server over this Ferry (the daemon) ---------------------------------------------

  /** `owner`'s unfinished jobs (scheduled, queued, running), counted up to `limit`: for launch quotas. */
  async countActive(owner: string, limit: number): Promise<number> {
    this.open();
    return this.store.countActive(owner, limit);
  }

  /**
   * Calls `listener` with the id of each job whose state or progress changes (as the store
   * announces them: across processes where it shares its events). Answers the unsubscribe.
   */
  onChange(listener: (jobId: string) => void): () => void {
    this.open();
    return this.store.subscribe((event) => {
      if (event.type === "changed") listener(event.id);
    });
  }

  /** Resolves once the store answers a read; throws as the store does (a liveness check). */
  async ping(): Promise<void> {
    this.open();
    // A real read (of an id no job has): `now()` alone never leaves the process on SQLite.
    await this.store.getJob(NO_JOB);
  }

  /** What the store noted on opening, for the operator (e.g. a setting it could not apply). */
  get notices(): readonly string[] {
    return this.store.notices ?? [];
  }

  /**
   * @internal The store's access document (users, tokens, grants), for `AccessControl.open`: it
   * belongs to the store, shared by every daemon on it, not to any one caller's jobs.
   */
  accessStore(): Pick<Store, "readAccess" | "writeAccess"> {
    return this.store;
  }

  /** Creates (or replaces, by name) a schedule; see `ferry.schedules` for the rest. */
  schedule(...args: Parameters<Schedules["create"]>): ReturnType<Schedules["create"]> {
    this.open();
    return this.schedules.create(...args);
  }

  // --- workers and lifecycle ----------------------------------------------------------------

  /** A worker on this Ferry's store; call `start()` on it. Stopped by `close()` if still running. */
  worker(options: WorkerOptions): Worker {
    this.open();
    const worker = new Worker(this.store, { maxResultBytes: this.#maxPayloadBytes, ...options });
    this.#workers.add(worker);
    worker.on("stopped", () => this.#workers.delete(worker));
    return worker;
  }

  /** Stops this Ferry's workers (30s grace) and closes the store if Ferry opened it. */
  async close(options: { grace?: Duration } = {}): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#workers].map((w) => w.stop(options)));
    this.#closed = true;
    this.#waiter.close();
    if (this.#ownsStore) await this.store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** An id no job has, for `ping`'s read. */
const NO_JOB = "00000000-0000-0000-0000-000000000000";
