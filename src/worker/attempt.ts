import { parseDuration } from "../core/duration.js";
import { toErrorInfo } from "../core/error-info.js";
import { ErrorCode, FerryError } from "../core/errors.js";
import { getSerializer } from "../serializers/index.js";
import type { ClaimedJob, LeaseRef, Outcome } from "../store/store.js";
import { RunningContext } from "./context.js";
import { failureOutcome } from "./decide.js";
import { jobScope } from "./detached-errors.js";
import type { JobDefinition } from "./handler.js";

/** What an attempt needs from the worker running it. */
export interface AttemptHost {
  /** Stored error strings are cut to this many bytes. */
  readonly errorMaxBytes: number;
  /** Largest result a handler may return, in bytes. */
  readonly maxResultBytes: number;
  /** Timeout for jobs whose policy and definition set none. */
  readonly defaultTimeoutMs: number;
  setProgress(lease: LeaseRef, fraction: number): Promise<void>;
  /** A cancel that reached the worker before this job did, if one did (taken: asked once). */
  takeEarlyCancel(id: string): { readonly graceMs: number; readonly at: number } | undefined;
  /** The attempt ended (once): free its slot and record `outcome` (undefined: nothing to record). */
  ended(attempt: Attempt, outcome: Outcome | undefined): void;
}

/**
 * One attempt of one claimed job in this worker: decodes the payload, calls the handler, and turns
 * however it ends (value, throw, timeout, cancel) into the one Outcome the store records. The
 * timeout and the forced cancel end it even when a handler ignores its abort signal.
 */
export class Attempt {
  readonly context: RunningContext;
  readonly startedMs = performance.now();
  settled = false;
  #timer: NodeJS.Timeout | undefined;
  #cancelTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly job: ClaimedJob,
    private readonly host: AttemptHost,
  ) {
    const lease: LeaseRef = { id: job.id, fence: job.fence };
    this.context = new RunningContext(job, async (fraction) => {
      await host.setProgress(lease, fraction);
    });
  }

  /** Runs `definition`'s handler (undefined: this worker has no such handler, the attempt fails). */
  run(definition: JobDefinition<unknown, unknown> | undefined): void {
    const job = this.job;
    if (definition === undefined) {
      this.settle(
        this.failed(job, new FerryError(ErrorCode.UnknownHandler, `no handler named ${job.handler}`), {
          code: ErrorCode.UnknownHandler,
        }),
      );
      return;
    }
    const timeoutMs = job.policy.timeoutMs ?? definition.defaults.timeout ?? this.host.defaultTimeoutMs;
    const ms = typeof timeoutMs === "number" ? timeoutMs : parseDuration(timeoutMs, "timeout");
    this.#timer = setTimeout(() => this.timeOut(ms), ms);
    if (job.cancelRequested) this.cancel(0);
    const early = this.host.takeEarlyCancel(job.id);
    if (early !== undefined) {
      // After the handler's first synchronous steps, so an abort listener it adds hears it.
      queueMicrotask(() => this.cancel(Math.max(0, early.graceMs - (Date.now() - early.at))));
    }

    let payload: unknown;
    try {
      payload = getSerializer(job.serializer).decode(job.payload);
      if (definition.schema !== undefined) payload = definition.schema.parse(payload);
    } catch (error) {
      const code = error instanceof FerryError ? error.code : ErrorCode.InvalidArgument;
      this.settle(this.failed({ ...job, maxAttempts: job.attempt }, error, { code }));
      return;
    }
    const sink = { fail: (reason: unknown) => this.settle(this.failed(job, reason)) };
    let result: unknown;
    try {
      result = jobScope.run(sink, () => definition.handler(payload, this.context));
    } catch (error) {
      this.settle(this.failed(job, error));
      return;
    }
    // Native promises and other thenables alike (a handler may return a Bluebird or a query builder).
    if (result instanceof Promise || typeof (result as { then?: unknown } | null)?.then === "function") {
      Promise.resolve(result).then(
        (value) => this.complete(value),
        (error: unknown) => this.settle(this.failure(error)),
      );
    } else {
      this.complete(result);
    }
  }

  /** Asks the handler to stop; after `graceMs` the attempt is recorded cancelled whatever it does. */
  cancel(graceMs: number): void {
    if (this.settled || this.#cancelTimer !== undefined) return;
    this.context.abort(ErrorCode.Cancelled, "cancelled by request");
    const force = () => {
      if (this.settled) return;
      this.settle({
        kind: "cancelled",
        id: this.job.id,
        fence: this.job.fence,
        error: toErrorInfo("cancelled (forced after the grace period)", {
          attempt: this.job.attempt,
          code: ErrorCode.Cancelled,
          retryable: false,
          maxBytes: this.host.errorMaxBytes,
        }),
      });
    };
    this.#cancelTimer = setTimeout(force, Math.max(0, graceMs));
  }

  /** Ends the attempt once: its timers stop, and the worker frees the slot and records `outcome`. */
  settle(outcome: Outcome | undefined): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#cancelTimer);
    this.host.ended(this, outcome);
  }

  /** An attempt's failure as the store records it, its strings cut to `errorMaxBytes`. */
  private failed(
    job: ClaimedJob,
    thrown: unknown,
    overrides: { code?: string; timedOut?: boolean } = {},
  ): Outcome {
    return failureOutcome(job, thrown, { ...overrides, errorMaxBytes: this.host.errorMaxBytes });
  }

  /** An error thrown after an abort is reported as the abort's cause (cancel, timeout, lease loss). */
  private failure(error: unknown): Outcome {
    const aborted = this.context.aborted;
    if (aborted?.code === ErrorCode.Cancelled && this.#cancelTimer !== undefined) {
      return {
        kind: "cancelled",
        id: this.job.id,
        fence: this.job.fence,
        error: toErrorInfo(aborted, {
          attempt: this.job.attempt,
          retryable: false,
          maxBytes: this.host.errorMaxBytes,
        }),
      };
    }
    return this.failed(this.job, error);
  }

  private complete(value: unknown): void {
    if (this.settled) return;
    let bytes: Uint8Array | null = null;
    try {
      if (value !== undefined) {
        bytes = getSerializer(this.job.serializer).encode(value, { maxBytes: this.host.maxResultBytes });
      }
    } catch (error) {
      const code = error instanceof FerryError ? error.code : ErrorCode.Serialization;
      this.settle(this.failed({ ...this.job, maxAttempts: this.job.attempt }, error, { code }));
      return;
    }
    this.settle({ kind: "completed", id: this.job.id, fence: this.job.fence, result: bytes });
  }

  private timeOut(ms: number): void {
    if (this.settled) return;
    this.context.abort(ErrorCode.Timeout, `timed out after ${ms} ms`);
    const error = new FerryError(ErrorCode.Timeout, `timed out after ${ms} ms`);
    this.settle(this.failed(this.job, error, { code: ErrorCode.Timeout, timedOut: true }));
  }
}
