/**
 * `ferry.as(owner)`: the caller's side of Ferry for one owner, as a daemon serves a user. Every
 * handle call checks the owner in the same read that checks the cookie, and another owner's job
 * answers as a wrong cookie does (FERRY_NOT_FOUND "no such job", after the same work); launches
 * carry the owner (and their `dependsOn` reaches only the owner's jobs); `list`, `cancelAll` and
 * `detachAll` reach the owner's jobs only; `schedules` the owner's schedules only.
 *
 * What is the whole store's (purge, stats, workers, pausing queues) is not here: an admin uses
 * the unscoped Ferry, whose calls take `{ owner }` too.
 */
import type { Duration } from "../core/duration.js";
import type { Handle, JobListRow, JobResult, JobState, JobStatus, LaunchedHandle } from "../core/job.js";
import type { WaitOptions } from "../core/options.js";
import type { JobDefinition } from "../worker/handler.js";
import type {
  FollowOptions,
  ListFilter,
  Outcome,
  ResultOrState,
  RetryOptions,
  ScopedWaitOptions,
  WatchEvent,
} from "./api-types.js";
import type {
  CallerLaunchItem,
  CallerLaunchOptions,
  CallerScheduleOptions,
  FerryCaller,
  ScheduleCaller,
} from "./caller.js";
import type { ScheduleView, ScheduleWhen } from "./schedules.js";

/** The handle calls both an owner's scope and the unscoped Ferry answer (the daemon holds either). */
export interface HandleCalls {
  status(handle: Handle): Promise<JobStatus>;
  wait(handle: Handle, options?: Omit<ScopedWaitOptions, "owner">): Promise<JobStatus>;
  waitAny(
    handles: readonly Handle[],
    options?: Omit<ScopedWaitOptions, "owner">,
  ): Promise<{ index: number; handle: Handle; status: JobStatus }>;
  drain(handles: readonly Handle[], options?: Omit<ScopedWaitOptions, "owner">): Promise<JobStatus[]>;
  result<T = unknown>(handle: Handle): Promise<JobResult<T>>;
  resultOrState<T = unknown>(handle: Handle): Promise<ResultOrState<T>>;
  outcome<T = unknown>(handle: Handle): Promise<Outcome<T>>;
  cancel(handle: Handle, options?: { grace?: Duration }): Promise<JobState>;
  detach(handle: Handle): Promise<void>;
  retry(handle: Handle, options?: Omit<RetryOptions, "owner">): Promise<void>;
  watch(handle: Handle, options?: Omit<FollowOptions, "owner">): AsyncGenerator<WatchEvent>;
  follow(handle: Handle, options?: Omit<FollowOptions, "owner">): AsyncGenerator<JobStatus>;
}

/** The caller's side of Ferry without the store-wide calls; see `FerryScope`. */
export type OwnerCaller = Omit<FerryCaller, "purge" | "stats" | "workers" | "pauseQueue" | "resumeQueue">;

/** An owner as the unscoped calls take it. */
type Owned = { owner?: string };

/**
 * What a scope needs of the unscoped Ferry: its calls, each taking an owner. Declared here, not
 * imported, so that ferry.ts (which makes scopes) and this module do not import each other.
 */
export interface Unscoped {
  readonly schedules: { as(owner: string): ScheduleCaller };
  launch<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options?: CallerLaunchOptions & Owned,
  ): Promise<LaunchedHandle>;
  submit<P>(
    handler: string | JobDefinition<P, unknown>,
    payload?: P,
    options?: CallerLaunchOptions & Owned,
  ): Promise<{ id: string; deduplicated: boolean }>;
  launchMany(
    items: readonly (CallerLaunchItem & { options?: CallerLaunchOptions & Owned })[],
  ): Promise<LaunchedHandle[]>;
  run<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options?: CallerLaunchOptions & { wait?: Duration } & Owned,
  ): Promise<JobResult<R>>;
  status(handle: Handle, options?: Owned): Promise<JobStatus>;
  wait(handle: Handle, options?: WaitOptions & ScopedWaitOptions): Promise<JobStatus>;
  waitAny(
    handles: readonly Handle[],
    options?: ScopedWaitOptions,
  ): Promise<{ index: number; handle: Handle; status: JobStatus }>;
  drain(handles: readonly Handle[], options?: ScopedWaitOptions): Promise<JobStatus[]>;
  result<T = unknown>(handle: Handle, options?: Owned): Promise<JobResult<T>>;
  resultOrState<T = unknown>(handle: Handle, options?: Owned): Promise<ResultOrState<T>>;
  outcome<T = unknown>(handle: Handle, options?: Owned): Promise<Outcome<T>>;
  cancel(handle: Handle, options?: { grace?: Duration } & Owned): Promise<JobState>;
  detach(handle: Handle, options?: Owned): Promise<void>;
  retry(handle: Handle, options?: RetryOptions): Promise<void>;
  watch(handle: Handle, options?: FollowOptions): AsyncGenerator<WatchEvent>;
  follow(handle: Handle, options?: FollowOptions): AsyncGenerator<JobStatus>;
  list(filter?: ListFilter): AsyncGenerator<JobListRow>;
  cancelAll(filter?: Omit<ListFilter, "limit"> & { grace?: Duration }): Promise<number>;
  detachAll(filter?: Omit<ListFilter, "limit">): Promise<number>;
}

/** One owner's side of a Ferry (`ferry.as(owner)`); see the top of this file. */
export class FerryScope implements OwnerCaller, HandleCalls {
  readonly #ferry: Unscoped;
  readonly owner: string;
  /** The owner's schedules: another owner's answers FERRY_NOT_FOUND "no such schedule". */
  readonly schedules: ScheduleCaller;

  constructor(ferry: Unscoped, owner: string) {
    this.#ferry = ferry;
    this.owner = owner;
    this.schedules = ferry.schedules.as(owner);
  }

  #launchOptions<O extends object>(options: O | undefined): O & { owner: string } {
    return { ...(options ?? ({} as O)), owner: this.owner };
  }

  launch<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options?: CallerLaunchOptions,
  ): Promise<LaunchedHandle> {
    return this.#ferry.launch(handler, payload, this.#launchOptions(options));
  }

  submit<P>(
    handler: string | JobDefinition<P, unknown>,
    payload?: P,
    options?: CallerLaunchOptions,
  ): Promise<{ id: string; deduplicated: boolean }> {
    return this.#ferry.submit(handler, payload, this.#launchOptions(options));
  }

  launchMany(items: readonly CallerLaunchItem[]): Promise<LaunchedHandle[]> {
    if (!Array.isArray(items)) return this.#ferry.launchMany(items);
    return this.#ferry.launchMany(
      items.map((item) => ({ ...item, options: this.#launchOptions(item.options) })),
    );
  }

  run<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options?: CallerLaunchOptions & { wait?: Duration },
  ): Promise<JobResult<R>> {
    // The job is this owner's, so the unscoped calls `run` makes on its handle reach it.
    return this.#ferry.run(handler, payload, this.#launchOptions(options));
  }

  status(handle: Handle): Promise<JobStatus> {
    return this.#ferry.status(handle, { owner: this.owner });
  }

  wait(handle: Handle, options: WaitOptions & Omit<ScopedWaitOptions, "owner"> = {}): Promise<JobStatus> {
    return this.#ferry.wait(handle, { ...options, owner: this.owner });
  }

  waitAny(
    handles: readonly Handle[],
    options: Omit<ScopedWaitOptions, "owner"> = {},
  ): Promise<{ index: number; handle: Handle; status: JobStatus }> {
    return this.#ferry.waitAny(handles, { ...options, owner: this.owner });
  }

  drain(handles: readonly Handle[], options: Omit<ScopedWaitOptions, "owner"> = {}): Promise<JobStatus[]> {
    return this.#ferry.drain(handles, { ...options, owner: this.owner });
  }

  result<T = unknown>(handle: Handle): Promise<JobResult<T>> {
    return this.#ferry.result<T>(handle, { owner: this.owner });
  }

  resultOrState<T = unknown>(handle: Handle): Promise<ResultOrState<T>> {
    return this.#ferry.resultOrState<T>(handle, { owner: this.owner });
  }

  outcome<T = unknown>(handle: Handle): Promise<Outcome<T>> {
    return this.#ferry.outcome<T>(handle, { owner: this.owner });
  }

  cancel(handle: Handle, options: { grace?: Duration } = {}): Promise<JobState> {
    return this.#ferry.cancel(handle, { ...options, owner: this.owner });
  }

  detach(handle: Handle): Promise<void> {
    return this.#ferry.detach(handle, { owner: this.owner });
  }

  retry(handle: Handle, options: Omit<RetryOptions, "owner"> = {}): Promise<void> {
    return this.#ferry.retry(handle, { ...options, owner: this.owner });
  }

  watch(handle: Handle, options: Omit<FollowOptions, "owner"> = {}): AsyncGenerator<WatchEvent> {
    return this.#ferry.watch(handle, { ...options, owner: this.owner });
  }

  follow(handle: Handle, options: Omit<FollowOptions, "owner"> = {}): AsyncGenerator<JobStatus> {
    return this.#ferry.follow(handle, { ...options, owner: this.owner });
  }

  list(filter: Omit<ListFilter, "owner"> = {}): AsyncGenerator<JobListRow> {
    return this.#ferry.list({ ...filter, owner: this.owner });
  }

  cancelAll(filter: Omit<ListFilter, "limit" | "owner"> & { grace?: Duration } = {}): Promise<number> {
    return this.#ferry.cancelAll({ ...filter, owner: this.owner });
  }

  detachAll(filter: Omit<ListFilter, "limit" | "owner"> = {}): Promise<number> {
    return this.#ferry.detachAll({ ...filter, owner: this.owner });
  }

  schedule(
    name: string,
    when: ScheduleWhen,
    payload?: unknown,
    options?: CallerScheduleOptions,
  ): Promise<ScheduleView> {
    return this.schedules.create(name, when, payload, options);
  }
}
