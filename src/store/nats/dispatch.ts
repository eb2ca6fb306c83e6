/**
 * Dispatches: a job's ticket on the work stream, one message per time it waits to run, with the
 * record and the revision it was published at (pull.ts reads them back). The message id (job id
 * and dispatch count) makes a repeated publish a no-op within the stream's duplicate window.
 */

import type { NatsContext } from "./context.js";
import { encodeJob } from "./job-codec.js";
import type { Versioned } from "./job-repo.js";
import { bandOf } from "./names.js";
import { JOB_HEADER, REVISION_HEADER } from "./pull.js";
import { isWaiting } from "./transitions.js";

/**
 * A class rather than closures: a process dying between a launch's record and its dispatch is staged
 * in tests by standing in for `publishDispatch` on the prototype.
 */
export class Dispatcher {
  constructor(private readonly ctx: NatsContext) {}

  /** Puts the job on the work stream: its next dispatch, carrying the revision it was read at. */
  async dispatch(current: Versioned): Promise<void> {
    try {
      await this.publishDispatch(current);
    } catch (error) {
      // The record is written: keep trying in the background (the message id makes a repeat a
      // no-op), so a job whose launch answered FERRY_STORE_UNAVAILABLE still runs once NATS is back.
      this.redispatchLater(current, 250);
      throw error;
    }
  }

  async publishDispatch(current: Versioned): Promise<void> {
    const { job } = current;
    await this.ctx.r.publish(
      this.ctx.names.workSubject(job.queue, bandOf(job.priority), job.handler),
      encodeJob(job),
      {
        msgID: `${job.id}.${job.dispatches}`,
        headers: { [JOB_HEADER]: job.id, [REVISION_HEADER]: String(current.revision) },
      },
    );
  }

  /**
   * After a launch whose record write went unanswered: once NATS answers again, a record that did
   * land and waits undispatched gets its dispatch (the message id makes a repeat a no-op).
   */
  recoverLaunch(id: string, delayMs: number): void {
    if (this.ctx.closed) return;
    const timer = setTimeout(() => {
      this.ctx.repo.read(id).then(
        (found) => {
          if (found === undefined || !isWaiting(found.job) || found.job.pendingDeps > 0) return;
          if (found.job.dispatches === 0) this.redispatchLater(found, 0);
        },
        () => this.recoverLaunch(id, Math.min(delayMs * 2, 5_000)),
      );
    }, delayMs);
    timer.unref();
  }

  /** Publishes a dispatch that failed, with back-off, until it lands or the store closes. */
  private redispatchLater(current: Versioned, delayMs: number): void {
    if (this.ctx.closed) return;
    const timer = setTimeout(() => {
      this.publishDispatch(current).then(
        () => this.ctx.events.announce([{ type: "enqueued", queue: current.job.queue }]),
        () => this.redispatchLater(current, Math.min(delayMs * 2, 5_000)),
      );
    }, delayMs);
    timer.unref();
  }

  /** Back to waiting with a fresh dispatch (retry, snooze, release, rescue, retry()). */
  async redispatch(id: string, known?: Versioned): Promise<Versioned | undefined> {
    const bumped = await this.ctx.repo.change(
      id,
      (job) => (isWaiting(job) ? { ...job, dispatches: job.dispatches + 1 } : undefined),
      known,
    );
    if (bumped === undefined) return undefined;
    await this.dispatch(bumped.after);
    this.ctx.events.announce([{ type: "enqueued", queue: bumped.after.job.queue }]);
    return bumped.after;
  }
}
