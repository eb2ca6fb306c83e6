/**
 * The caller's side of Ferry: what a process that launches and follows jobs may call, whether it
 * holds the store (`Ferry`) or reaches it through a daemon (`FerryClient`). Both classes implement
 * it, so the type checker keeps their names, arguments and answers the same. Where the library
 * takes more, the interface holds the part both take:
 *
 * - no `tx` and no `owner` in launch options: a transaction is the store's, and a daemon sets
 *   the owner from the caller's token;
 * - `status` takes no `owner` (the library's way of asking as a user; a daemon asks as the caller);
 * - `list` filters take no `owner` or `previews`, and `cancelAll`/`detachAll` only a label: a
 *   daemon decides whose jobs a caller reaches and what it sees of them;
 * - schedule updates take a `repeat` count, not null (the RPC has no way to clear it).
 *
 * Workers, `close` and the store itself are the library's alone.
 */
import type { Duration } from "../core/duration.js";
import type { Handle, JobListRow, JobResult, JobState, JobStatus, LaunchedHandle } from "../core/job.js";
import type { LaunchOptions, WaitOptions } from "../core/options.js";
import type { StoreStats, WorkerInfo } from "../store/store.js";
import type { AnyJobDefinition, JobDefinition } from "../worker/handler.js";
import type { ListFilter, Outcome, ScheduleView, ScheduleWhen, WatchEvent } from "./api-types.js";

/** Launch options both sides take. */
export type CallerLaunchOptions = Omit<LaunchOptions, "tx" | "owner">;

/** One job of `launchMany`. */
export interface CallerLaunchItem {
  handler: string | AnyJobDefinition;
  payload?: unknown;
  options?: CallerLaunchOptions;
}

/** What a schedule keeps for the jobs it fires, and the handler it fires (default: its name). */
export type CallerScheduleOptions = Omit<
  CallerLaunchOptions,
  "dependsOn" | "uniqueKey" | "delay" | "runAt"
> & {
  handler?: string;
};

export interface CallerScheduleChange {
  cron?: string;
  tz?: string;
  every?: Duration;
  repeat?: number;
  nextRunAt?: Date;
}

export interface ScheduleCaller {
  create(
    name: string,
    when: ScheduleWhen,
    payload?: unknown,
    options?: CallerScheduleOptions,
  ): Promise<ScheduleView>;
  list(): Promise<ScheduleView[]>;
  get(id: string): Promise<ScheduleView>;
  pause(id: string): Promise<ScheduleView>;
  resume(id: string): Promise<ScheduleView>;
  cancel(id: string): Promise<void>;
  update(id: string, change: CallerScheduleChange): Promise<ScheduleView>;
}

export interface FerryCaller {
  readonly schedules: ScheduleCaller;

  launch<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options?: CallerLaunchOptions,
  ): Promise<LaunchedHandle>;
  submit<P>(
    handler: string | JobDefinition<P, unknown>,
    payload?: P,
    options?: CallerLaunchOptions,
  ): Promise<{ id: string; deduplicated: boolean }>;
  launchMany(items: readonly CallerLaunchItem[]): Promise<LaunchedHandle[]>;

  status(handle: Handle): Promise<JobStatus>;
  wait(handle: Handle, options?: WaitOptions): Promise<JobStatus>;
  waitAny(
    handles: readonly Handle[],
    options?: WaitOptions,
  ): Promise<{ index: number; handle: Handle; status: JobStatus }>;
  drain(handles: readonly Handle[], options?: WaitOptions): Promise<JobStatus[]>;
  result<T = unknown>(handle: Handle): Promise<JobResult<T>>;
  outcome<T = unknown>(handle: Handle): Promise<Outcome<T>>;
  run<P, R>(
    handler: string | JobDefinition<P, R>,
    payload?: P,
    options?: CallerLaunchOptions & { wait?: Duration },
  ): Promise<JobResult<R>>;
  cancel(handle: Handle, options?: { grace?: Duration }): Promise<JobState>;
  detach(handle: Handle): Promise<void>;
  retry(handle: Handle): Promise<void>;
  watch(handle: Handle, options?: { signal?: AbortSignal }): AsyncGenerator<WatchEvent>;

  list(filter?: Omit<ListFilter, "owner" | "previews">): AsyncGenerator<JobListRow>;
  cancelAll(filter?: { label?: string; grace?: Duration }): Promise<number>;
  detachAll(filter?: { label?: string }): Promise<number>;
  purge(options: { state?: "completed" | "failed" | "cancelled"; olderThan: Duration }): Promise<number>;
  stats(): Promise<StoreStats>;
  workers(): AsyncGenerator<WorkerInfo>;
  pauseQueue(queue: string): Promise<void>;
  resumeQueue(queue: string): Promise<void>;
  schedule(
    name: string,
    when: ScheduleWhen,
    payload?: unknown,
    options?: CallerScheduleOptions,
  ): Promise<ScheduleView>;
}
