/**
 * The caller's side of the library over a daemon: the same names, options, answers and error
 * codes as `Ferry`, for a process that holds no store. Workers, transactions and `close` of a
 * store stay with the library; what a caller may do is what its token's role allows.
 */
import type { FerryCaller } from "../api/caller.js";
import type { LaunchItem, ListFilter, Outcome, WatchEvent } from "../api/ferry.js";
import { runWaitMs } from "../api/run-wait.js";
import type { ScheduleView, ScheduleWhen } from "../api/schedules.js";
import { type Duration, parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import type { Handle, JobListRow, JobResult, JobState, JobStatus, LaunchedHandle } from "../core/job.js";
import type { JobStatus as PbJobStatus } from "../gen/ferry/v1/jobs_pb.js";
import type { StoreStats, WorkerInfo } from "../store/store.js";
import type { JobDefinition } from "../worker/handler.js";
import type { Connection } from "./connection.js";
import { calling } from "./errors.js";
import { listRowFrom, resultFrom, statsFrom, statusFrom, workerFrom } from "./from-proto.js";
import { LaunchBatcher } from "./launch-batcher.js";
import { type RemoteScheduleOptions, RemoteSchedules } from "./remote-schedules.js";
import { Reconnecting, resuming, throwIfAborted } from "./resume.js";
import {
  durationText,
  handleMessage,
  launchMessage,
  prepareRemoteLaunch,
  type RemoteLaunchOptions,
} from "./to-proto.js";

/** `wait`, `waitAny` and `drain`, as in the library. */
export interface RemoteWaitOptions {
  readonly timeout?: Duration;
  readonly signal?: AbortSignal;
}

/** One job of `launchMany`. */
export interface RemoteLaunchItem {
  handler: LaunchItem["handler"];
  payload?: unknown;
  options?: RemoteLaunchOptions;
}

/** The daemon's page size for `list` (its largest). */
const PAGE = 1000;

export class FerryClient implements FerryCaller {
  readonly server: string;
  readonly schedules: RemoteSchedules;
  readonly #connection: Connection;
  readonly #resumeForMs: number;
  /** Concurrent launches and submits, sent as one call (launch-batcher.ts). */
  readonly #launches: LaunchBatcher;

  constructor(connection: Connection, resumeForMs: number) {
    this.#connection = connection;
    this.#resumeForMs = resumeForMs;
    this.#launches = new LaunchBatcher(connection);
    this.server = connection.server;
    this.schedules = new RemoteSchedules(connection);
  }

  // --- launching -----------------------------------------------------------------------------

  /** Stores a job and answers its handle `{ id, cookie }`. A definition's schema is checked before sending. */
  launch<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options?: RemoteLaunchOptions,
  ): Promise<LaunchedHandle> {
    return calling(async () =>
      this.#launches.add(prepareRemoteLaunch(handler as LaunchItem["handler"], payload, options), false),
    );
  }

  /** Fire-and-forget: the job runs, its result is dropped, and no handle reaches it. */
  submit<P>(
    handler: string | JobDefinition<P, unknown>,
    payload?: P,
    options?: RemoteLaunchOptions,
  ): Promise<{ id: string; deduplicated: boolean }> {
    return calling(async () => {
      const job = prepareRemoteLaunch(handler as LaunchItem["handler"], payload, options);
      const { id, deduplicated } = await this.#launches.add(job, true);
      return { id, deduplicated };
    });
  }

  /** All stored or none, in one call (the daemon takes at most 1,000). */
  launchMany(items: readonly RemoteLaunchItem[]): Promise<LaunchedHandle[]> {
    return calling(async () => {
      if (!Array.isArray(items)) throw invalidArgument("launchMany takes an array");
      const jobs = items.map((item) =>
        launchMessage(prepareRemoteLaunch(item.handler, item.payload, item.options)),
      );
      const { handles } = await this.#connection.jobs.launchMany({ jobs });
      return handles.map(({ id, cookie }) => ({ id, cookie, deduplicated: cookie === "" }));
    });
  }

  // --- one job, by handle ---------------------------------------------------------------------

  /** State, attempts, progress and times. Does not consume the result. */
  status(handle: Handle): Promise<JobStatus> {
    return calling(async () =>
      statusFrom(await this.#connection.jobs.status({ handle: handleMessage(handle) })),
    );
  }

  /** Waits until the job is finished (or `timeout`, then FERRY_TIMEOUT). Does not consume. */
  wait(handle: Handle, options: RemoteWaitOptions = {}): Promise<JobStatus> {
    const message = handleMessage(handle);
    return this.#waiting(options, async (timeout, callOptions) =>
      statusFrom(await this.#connection.jobs.wait({ handle: message, ...timeout }, callOptions)),
    );
  }

  /** The first of several jobs to finish. */
  waitAny(
    handles: readonly Handle[],
    options: RemoteWaitOptions = {},
  ): Promise<{ index: number; handle: Handle; status: JobStatus }> {
    const messages = handles.map(handleMessage);
    if (messages.length === 0) return Promise.reject(invalidArgument("waitAny needs at least one handle"));
    return this.#waiting(options, async (timeout, callOptions) => {
      const first = await this.#connection.jobs.waitAny({ handles: messages, ...timeout }, callOptions);
      return { index: first.index, handle: handles[first.index]!, status: statusFrom(first.status!) };
    });
  }

  /** Waits until all of them are finished. */
  drain(handles: readonly Handle[], options: RemoteWaitOptions = {}): Promise<JobStatus[]> {
    const messages = handles.map(handleMessage);
    if (messages.length === 0) return Promise.resolve([]);
    return this.#waiting(options, async (timeout, callOptions) =>
      (await this.#connection.jobs.drain({ handles: messages, ...timeout }, callOptions)).statuses.map(
        statusFrom,
      ),
    );
  }

  /** A finished job's result, handed out once: `{ state, value | error, attempts, … }`. */
  result<T = unknown>(handle: Handle): Promise<JobResult<T>> {
    return calling(async () =>
      resultFrom<T>(await this.#connection.jobs.result({ handle: handleMessage(handle) })),
    );
  }

  /** Like result, but never throws: unfinished jobs answer their state, bad handles `not_found`. */
  async outcome<T = unknown>(handle: Handle): Promise<Outcome<T>> {
    try {
      const answer = await calling(() => this.#connection.jobs.outcome({ handle: handleMessage(handle) }));
      if (answer.state === "not_found" || answer.state === "unavailable") {
        return {
          state: answer.state,
          error: { code: answer.error?.code ?? "", message: answer.error?.message ?? "" },
        };
      }
      if (answer.state === "scheduled" || answer.state === "queued" || answer.state === "running") {
        return { id: answer.id, state: answer.state };
      }
      return resultFrom<T>(answer);
    } catch (error) {
      const ferryError = error as FerryError;
      const state =
        ferryError.code === ErrorCode.NotFound || ferryError.code === ErrorCode.InvalidArgument
          ? "not_found"
          : "unavailable";
      return { state, error: { code: ferryError.code, message: ferryError.message } };
    }
  }

  /** Launch, wait and collect in one call. On timeout the job is cancelled and FERRY_TIMEOUT thrown. */
  run<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options: RemoteLaunchOptions & { wait?: Duration } = {},
  ): Promise<JobResult<R>> {
    return calling(async () => {
      const { wait, ...launchOptions } = options;
      const job = prepareRemoteLaunch(handler as LaunchItem["handler"], payload, launchOptions);
      // The daemon computes the same wait; sent explicitly so a definition's timeout counts too.
      const waitMs = runWaitMs(wait, job.timeout);
      const result = await this.#connection.jobs.run({
        ...launchMessage(job),
        ...(waitMs === undefined ? {} : { wait: `${waitMs}ms` }),
      });
      return resultFrom<R>(result);
    });
  }

  /** Cancels; answers the state after the request ("cancelled", or "running" while its grace lasts). */
  cancel(handle: Handle, options: { grace?: Duration } = {}): Promise<JobState> {
    return calling(async () => {
      const grace = options.grace === undefined ? {} : { grace: durationText(options.grace, "grace") };
      return (await this.#connection.jobs.cancel({ handle: handleMessage(handle), ...grace }))
        .state as JobState;
    });
  }

  /** Forgets the handle: the job runs on, its result is dropped, the handle reaches nothing after. */
  async detach(handle: Handle): Promise<void> {
    await calling(() => this.#connection.jobs.detach({ handle: handleMessage(handle) }));
  }

  /** Re-queues a failed or cancelled job with fresh attempts. */
  async retry(handle: Handle): Promise<void> {
    await calling(() => this.#connection.jobs.retry({ handle: handleMessage(handle) }));
  }

  /**
   * State and progress changes until the job finishes (or `signal` aborts: then it throws its
   * reason). When the daemon goes away mid-watch, the watch subscribes again once it is back.
   */
  async *watch(handle: Handle, options: { signal?: AbortSignal } = {}): AsyncGenerator<WatchEvent> {
    const { signal } = options;
    const message = handleMessage(handle);
    const reconnecting = new Reconnecting(this.#resumeForMs, signal);
    let last = "";
    for (;;) {
      try {
        for await (const status of this.#connection.jobs.watch(
          { handle: message },
          signal ? { signal } : {},
        )) {
          reconnecting.reached();
          const event = watchEventOf(status);
          // A resumed watch starts with the status already seen: give each change once.
          const key = `${event.state}|${event.progress}|${event.attempts}`;
          if (key !== last) {
            last = key;
            yield event;
          }
        }
        return;
      } catch (error) {
        await reconnecting.retryAfter(error);
      }
    }
  }

  // --- many jobs ------------------------------------------------------------------------------

  /** Every job matching the filter that the caller may see, oldest first, fetched a page at a time. */
  async *list(filter: Omit<ListFilter, "owner" | "previews"> = {}): AsyncGenerator<JobListRow> {
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    if (!(limit >= 0)) throw invalidArgument("limit must be a non-negative number");
    let afterId = filter.afterId;
    let given = 0;
    while (given < limit) {
      const page = await calling(() =>
        this.#connection.jobs.list({
          ...(filter.state === undefined ? {} : { state: filter.state }),
          ...(filter.queue === undefined ? {} : { queue: filter.queue }),
          ...(filter.label === undefined ? {} : { label: filter.label }),
          ...(filter.handler === undefined ? {} : { handler: filter.handler }),
          ...(afterId === undefined ? {} : { afterId }),
          limit: Math.min(PAGE, limit - given),
        }),
      );
      for (const row of page.jobs) {
        yield listRowFrom(row);
        given += 1;
      }
      if (page.nextAfterId === undefined) return;
      afterId = page.nextAfterId;
    }
  }

  /** Cancels every unfinished job whose label matches, or with no label every one the caller may reach. Answers how many. */
  cancelAll(filter: { label?: string; grace?: Duration } = {}): Promise<number> {
    return calling(async () => {
      const grace = filter.grace === undefined ? {} : { grace: durationText(filter.grace, "grace") };
      const reach = filter.label === undefined ? { all: true } : { label: filter.label };
      return (await this.#connection.jobs.cancelAll({ ...reach, ...grace })).count;
    });
  }

  /** Detaches every job whose label matches, or with no label every one the caller may reach. Answers how many. */
  detachAll(filter: { label?: string } = {}): Promise<number> {
    return calling(async () => {
      const reach = filter.label === undefined ? { all: true } : { label: filter.label };
      return (await this.#connection.jobs.detachAll(reach)).count;
    });
  }

  /** Deletes finished jobs older than `olderThan` (admins). Answers how many. */
  purge(options: { state?: "completed" | "failed" | "cancelled"; olderThan: Duration }): Promise<number> {
    return calling(async () => {
      const olderThan = durationText(options.olderThan, "olderThan");
      const state = options.state === undefined ? {} : { state: options.state };
      return (await this.#connection.jobs.purge({ olderThan, ...state })).count;
    });
  }

  /** Counts by queue and state, and the lifetime counters (admins and viewers). */
  stats(): Promise<StoreStats> {
    return calling(async () => statsFrom(await this.#connection.admin.stats({})));
  }

  /** Workers that heartbeat into the daemon's store (admins and viewers). */
  async *workers(): AsyncGenerator<WorkerInfo> {
    const { workers } = await calling(() => this.#connection.admin.listWorkers({}));
    for (const worker of workers) yield workerFrom(worker);
  }

  async pauseQueue(queue: string): Promise<void> {
    await calling(() => this.#connection.admin.pauseQueue({ queue }));
  }

  async resumeQueue(queue: string): Promise<void> {
    await calling(() => this.#connection.admin.resumeQueue({ queue }));
  }

  /** Creates (or replaces, by name) a schedule; see `client.schedules` for the rest. */
  schedule(
    name: string,
    when: ScheduleWhen,
    payload?: unknown,
    options?: RemoteScheduleOptions,
  ): Promise<ScheduleView> {
    return this.schedules.create(name, when, payload, options);
  }

  /** A long wait: made again while the daemon restarts, each time with the time left of `timeout`. */
  #waiting<T>(
    options: RemoteWaitOptions,
    call: (timeout: { timeout?: string }, callOptions: { signal?: AbortSignal }) => Promise<T>,
  ): Promise<T> {
    return calling(async () => {
      const { signal } = options;
      const callOptions = signal === undefined ? {} : { signal };
      const deadline =
        options.timeout === undefined ? undefined : Date.now() + parseDuration(options.timeout, "timeout");
      return resuming(this.#resumeForMs, signal, async () => {
        throwIfAborted(signal);
        if (deadline === undefined) return call({}, callOptions);
        const left = deadline - Date.now();
        if (left <= 0) throw new FerryError(ErrorCode.Timeout, "the job did not finish in time");
        return call({ timeout: `${left}ms` }, callOptions);
      });
    });
  }
}

const watchEventOf = (status: PbJobStatus): WatchEvent => ({
  state: status.state as JobState,
  progress: status.progress ?? null,
  attempts: status.attempts,
});
