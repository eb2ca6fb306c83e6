/** The shapes the library's calls take and answer (re-exported by ./ferry.ts and the package). */
import type { Duration } from "../core/duration.js";
import type { FerryError } from "../core/errors.js";
import type { JobResult, JobState, LaunchedHandle } from "../core/job.js";
import type { LaunchOptions, WaitOptions } from "../core/options.js";
import type { Store } from "../store/store.js";
import type { AnyJobDefinition } from "../worker/handler.js";

export interface QueueOptions {
  /** Serializer for jobs launched on this queue without one of their own. */
  serializer?: string;
  /** At most this many jobs of one group run at once on this queue (across all workers). */
  groupConcurrency?: number;
  /**
   * At most this many starts of one group's jobs per window on this queue (across all workers):
   * "100/m", "5/s", "10/30s". Windows are fixed, aligned to the epoch; a retry counts as a start.
   */
  groupRate?: string;
}

export interface OpenOptions {
  /** A store URL (`sqlite:./ferry.db`, …) or a Store. Default: FERRY_STORE, else sqlite:./ferry.db. */
  store?: string | Store;
  /** SQLite: fsync every commit (synchronous=FULL). Default false. */
  durable?: boolean;
  /** Default serializer. Default: FERRY_SERIALIZER, else "json". */
  serializer?: string;
  queues?: Readonly<Record<string, QueueOptions>>;
  /** Largest encoded payload accepted by launch. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** Create or upgrade the schema on open. Default true. */
  migrate?: boolean;
}

/** One job to launch with launchMany. */
export interface LaunchItem {
  handler: string | AnyJobDefinition;
  payload?: unknown;
  options?: LaunchOptions;
}

/** One job of launchEach; `submit` launches it as `submit` does (no cookie, result dropped). */
export interface LaunchEachItem extends LaunchItem {
  submit?: boolean;
}

/** What launchEach answers for one job: its handle, or why it alone was refused. */
export type LaunchSettled =
  | { readonly ok: true; readonly handle: LaunchedHandle }
  | { readonly ok: false; readonly error: FerryError };

export interface ListFilter {
  state?: JobState;
  queue?: string;
  /** SQL LIKE pattern ("nightly-%"). */
  label?: string;
  handler?: string;
  owner?: string;
  /** Stop after this many rows. Default: all. */
  limit?: number;
  /** Start after this id (the last of the previous page). */
  afterId?: string;
  /** Include each payload's preview. Default true; the daemon turns it off for viewers. */
  previews?: boolean;
}

/**
 * Whose jobs a handle call reaches. With `owner`, another owner's job answers FERRY_NOT_FOUND
 * "no such job", byte for byte and after the same work as a wrong cookie: a leaked handle proves
 * nothing. `ferry.as(owner)` sets it on every call.
 */
export interface OwnerScope {
  readonly owner?: string;
}

/**
 * Taken once every handle of a wait or watch is found (and owned), before it waits: what it
 * throws ends the call (the daemon takes a caller's open-watch slot here, so an unknown handle
 * answers not found rather than a full quota), and the signal it answers ends the wait as
 * `signal` does.
 */
export type AdmitWait = () => AbortSignal | undefined;

/** A wait's options with an owner scope and an admission (see `AdmitWait`). */
export interface ScopedWaitOptions extends WaitOptions, OwnerScope {
  readonly admit?: AdmitWait;
}

/** What `follow` (and `watch`) take. */
export interface FollowOptions extends OwnerScope {
  readonly signal?: AbortSignal;
  readonly admit?: AdmitWait;
}

/** What `retry` takes: the owner scope, and a last check of the job before it is queued again. */
export interface RetryOptions extends OwnerScope {
  /**
   * Runs after the job is read and owned and before it is re-queued, with its handler: what it
   * throws stops the retry (the daemon checks the caller's launch rights and quota here).
   */
  readonly before?: (job: { readonly id: string; readonly handler: string }) => void | Promise<void>;
}

/** A finished job's result (collected), or an unfinished one's id and state. */
export type ResultOrState<T = unknown> =
  | JobResult<T>
  | { readonly state: "scheduled" | "queued" | "running"; readonly id: string };

export interface WatchEvent {
  readonly state: JobState;
  readonly progress: number | null;
  readonly attempts: number;
}

export type Outcome<T = unknown> =
  | JobResult<T>
  | { readonly state: "scheduled" | "queued" | "running"; readonly id: string }
  /** not_found: no such job, wrong cookie, or result already collected; unavailable: the store failed. */
  | {
      readonly state: "not_found" | "unavailable";
      readonly error: { readonly code: string; readonly message: string };
    };

/** When a schedule fires (api/schedules.ts). */
export type ScheduleWhen =
  | { cron: string; tz?: string; repeat?: number }
  | { every: Duration; repeat?: number };

export interface ScheduleView {
  readonly id: string;
  readonly name: string;
  readonly handler: string;
  readonly cron: string | null;
  readonly tz: string | null;
  readonly everyMs: number | null;
  readonly repeatLeft: number | null;
  readonly paused: boolean;
  /** Why the scheduler paused it (its owner may no longer start its handler); null when a user did. */
  readonly pausedReason: string | null;
  readonly nextRunAt: Date | null;
  readonly lastFiredAt: Date | null;
  /**
   * The user whose jobs it fires (`owner` of its launch options), null when none. Over a daemon,
   * admins see it; other callers null.
   */
  readonly owner: string | null;
}
