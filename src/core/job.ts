/** Job vocabulary shared by the API, the worker and every store. No I/O here. */

export const JOB_STATES = ["scheduled", "queued", "running", "completed", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];

export const FINISHED_STATES: ReadonlySet<JobState> = new Set(["completed", "failed", "cancelled"]);
export const isFinished = (state: JobState): boolean => FINISHED_STATES.has(state);

export interface Handle {
  readonly id: string;
  readonly cookie: string;
}

/** What `launch` answers: a handle, and whether it matched an unfinished job with the same uniqueKey. */
export interface LaunchedHandle extends Handle {
  /** true: nothing new was stored; `id` is the existing job and `cookie` is empty (the first launcher holds it). */
  readonly deduplicated: boolean;
}

export interface BackoffPolicy {
  readonly type: "fixed" | "exponential";
  readonly baseMs: number;
  readonly maxMs: number;
  /** 0..1: the share of each delay drawn at random, so retries of a burst spread out. */
  readonly jitter: number;
}

/** Per-job rules the worker applies; stores keep them opaque. */
export interface JobPolicy {
  readonly backoff: BackoffPolicy;
  readonly timeoutMs: number | null;
  readonly retryOn: readonly string[] | null;
  readonly ignoreOn: readonly string[] | null;
  readonly resultTtlMs: number;
}

/** The structured error kept for a failed attempt. Every string in it is cut to 512 bytes (the worker's `errorMaxBytes`). */
export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly retryable: boolean;
  readonly attempt: number;
  /** Extra structured facts, e.g. SQLSTATE and constraint for sql.exec. */
  readonly fields?: Readonly<Record<string, string>>;
}

/** Progress as a fraction 0..1, or any small JSON object the handler reports. */
export type Progress = number;

export interface JobStatus {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  readonly state: JobState;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly progress: Progress | null;
  readonly label: string | null;
  readonly priority: number;
  readonly owner: string | null;
  readonly launchedAt: Date;
  readonly runAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly consumed: boolean;
  readonly cancelRequested: boolean;
  readonly errorInfo: ErrorInfo | null;
}

export interface JobResult<T = unknown> {
  readonly id: string;
  readonly state: "completed" | "failed" | "cancelled";
  readonly value?: T;
  readonly error?: ErrorInfo;
  readonly attempts: number;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
}

export interface JobListRow {
  readonly id: string;
  readonly handler: string;
  readonly queue: string;
  readonly state: JobState;
  readonly owner: string | null;
  readonly launchedAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly attempts: number;
  readonly label: string | null;
  readonly progress: Progress | null;
  /** First 120 characters of the payload as JSON; null when the caller may not see it. */
  readonly preview: string | null;
  /** The last error's message. */
  readonly lastError: string | null;
  /** The last error's stable code (FERRY_TIMEOUT, FERRY_SQL_ERROR…). */
  readonly lastErrorCode: string | null;
  readonly consumed: boolean;
}
