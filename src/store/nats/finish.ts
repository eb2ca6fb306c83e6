/**
 * Finishing on the NATS store: a worker's outcome written into the job's record (fenced, by the
 * rules of transitions.ts), then what follows once it landed: ack or re-dispatch, free the group
 * slot, release the uniqueKey and tell the jobs that depend on it. Rescue ends a vanished holder's
 * job the same way.
 */
import { rescueOutcome } from "../rescue.js";
import type { Outcome } from "../store.js";
import type { Held, NatsContext } from "./context.js";
import type { Dispatcher } from "./dispatch.js";
import type { StoredJob } from "./job-codec.js";
import type { Versioned } from "./job-repo.js";
import { queueInfo } from "./registry.js";
import { applyOutcome, isWaiting, parentFinished } from "./transitions.js";
import { releaseUniqueKey } from "./unique-keys.js";

export type Tally = { requeued: number; failed: number; cancelled: number };

export function makeFinish(ctx: NatsContext, dispatcher: Dispatcher) {
  const { repo, events, counters } = ctx;

  /**
   * Writes an outcome into the job's record (fenced); answers what is left to do once it landed
   * (ack the dispatch, re-dispatch, release a group slot, tell dependants), or undefined when the
   * outcome was refused.
   */
  async function recordOutcome(outcome: Outcome): Promise<(() => Promise<void>) | undefined> {
    const held = ctx.held.get(outcome.id);
    let applied: ReturnType<typeof applyOutcome>;
    const changed = await repo.change(
      outcome.id,
      (job) => {
        applied = applyOutcome(job, outcome, Date.now());
        return applied?.next;
      },
      held?.known,
    );
    if (changed === undefined || applied === undefined) {
      // Fenced off: this claim is over (another holder's entry, if any, stays).
      if (held?.known.job.fence === outcome.fence) ctx.held.delete(outcome.id);
      return undefined;
    }
    ctx.held.delete(outcome.id);
    counters.count(applied.counts);
    const job = changed.after.job;
    const succeeded = applied.finished?.succeeded === true;
    return () => afterOutcome(job, changed.after, held, succeeded);
  }

  async function afterOutcome(
    job: StoredJob,
    after: Versioned,
    held: Held | undefined,
    succeeded: boolean,
  ): Promise<void> {
    if (job.group !== null) {
      const { groupConcurrency } = await queueInfo(ctx, job.queue);
      if (groupConcurrency !== null) {
        await ctx.slots.release(job.queue, job.group, groupConcurrency, job.id);
        events.announce([{ type: "enqueued", queue: job.queue }]);
      }
    }
    if (isWaiting(job)) {
      // A new dispatch first, then the old one acked: a crash in between leaves two tickets for
      // one job, and the record lets only one of them claim it.
      await dispatcher.redispatch(job.id, after);
      await held?.message?.ackAck();
    } else {
      await held?.message?.ackAck();
      if (job.uniqueKey !== null || job.children.length > 0) await afterFinish(job, succeeded);
    }
    // Other processes hear of it only when one of them waits on it (markWatched).
    events.changed([job.id], !job.watched);
  }

  /** A job finished for good: free its uniqueKey and tell the jobs that wait on it. */
  async function afterFinish(job: StoredJob, succeeded: boolean): Promise<void> {
    await releaseUniqueKey(ctx, job);
    const now = Date.now();
    for (const childId of job.children) {
      const changed = await repo.change(childId, (child) => parentFinished(child, job.id, succeeded, now));
      if (changed === undefined) continue;
      const child = changed.after.job;
      if (child.state === "failed") {
        counters.count({ failed: 1 });
        await afterFinish(child, false);
        events.changed([child.id]);
      } else if (child.pendingDeps === 0) {
        await dispatcher.redispatch(child.id, changed.after);
      }
    }
  }

  async function finishOne(outcome: Outcome): Promise<boolean> {
    const then = await recordOutcome(outcome);
    await then?.();
    return then !== undefined;
  }

  return {
    async finish(outcomes: readonly Outcome[]): Promise<boolean[]> {
      const recorded = await Promise.all(outcomes.map((outcome) => recordOutcome(outcome)));
      const applied = recorded.map((r) => r !== undefined);
      // Counted before answering, so stats() anywhere agrees with the states a caller then sees; the
      // expiries too, so no finished job escapes pruning once its worker moved on. Written beside the
      // acks, once every record is: two round trips in all, not three.
      await Promise.all([
        ...recorded.map((r) => r?.()),
        applied.some(Boolean) ? Promise.all([counters.flush(), ctx.expiry.flush()]) : undefined,
      ]);
      return applied;
    },

    afterFinish,

    /** Applies the shared rescue rule to a running job whose holder vanished. */
    async rescueOne(
      current: Versioned,
      tally: Tally = { requeued: 0, failed: 0, cancelled: 0 },
    ): Promise<void> {
      const { job } = current;
      const outcome = rescueOutcome(
        {
          id: job.id,
          fence: job.fence,
          attempts: job.attempts,
          maxAttempts: job.maxAttempts,
          cancelRequested: job.cancelRequested,
          policy: JSON.stringify(job.policy),
          lastError: job.error,
        },
        tally,
      );
      await finishOne(outcome);
    },
  };
}

export type NatsFinish = ReturnType<typeof makeFinish>;
