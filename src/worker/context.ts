import { type Duration, parseDuration } from "../core/duration.js";
import { ErrorCode, FerryError, invalidArgument } from "../core/errors.js";
import type { ClaimedJob } from "../store/store.js";
import { HandlerControl } from "./control.js";
import type { JobContext, JobInfo } from "./handler.js";

/**
 * The context handed to a handler. The AbortController is made only when the handler asks for
 * the signal: most jobs never do, and a drain of 50,000 no-ops should not pay for 50,000 of them.
 */
export class RunningContext implements JobContext {
  #job: JobInfo | undefined;
  #controller: AbortController | undefined;
  #abortReason: FerryError | undefined;

  constructor(
    private readonly claimed: ClaimedJob,
    private readonly reportProgress: (fraction: number) => Promise<void>,
  ) {}

  /** Built on first read, like the signal: a no-op handler never pays for it. */
  get job(): JobInfo {
    this.#job ??= {
      id: this.claimed.id,
      handler: this.claimed.handler,
      queue: this.claimed.queue,
      attempt: this.claimed.attempt,
      maxAttempts: this.claimed.maxAttempts,
      label: this.claimed.label,
      launchedAt: new Date(this.claimed.launchedAt),
      timeoutMs: this.claimed.policy.timeoutMs,
    };
    return this.#job;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  get aborted(): FerryError | undefined {
    return this.#abortReason;
  }

  abort(code: ErrorCode, message: string): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = new FerryError(code, message);
    this.#controller?.abort(this.#abortReason);
  }

  async progress(fraction: number): Promise<void> {
    if (typeof fraction !== "number" || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
      throw invalidArgument("progress must be a number from 0 to 1");
    }
    if (this.#abortReason !== undefined) return;
    await this.reportProgress(fraction);
  }

  snooze(delay: Duration): never {
    throw new HandlerControl("snooze", "snoozed", parseDuration(delay, "snooze delay"));
  }

  discard(reason: string): never {
    throw new HandlerControl("discard", String(reason));
  }

  cancel(reason: string): never {
    throw new HandlerControl("cancel", String(reason));
  }
}

export const cancelledError = (message = "cancelled"): FerryError =>
  new FerryError(ErrorCode.Cancelled, message);
