/**
 * The owner's controls on the NATS store: collect a result, cancel, detach, retry and purge, one
 * compare-and-set of the job's record each (the bulk forms go through the listing index).
 */
import { ErrorCode } from "../../core/errors.js";
import { isFinished } from "../../core/job.js";
import type { CancelResult, JobFilter, JobRecord, PurgeRequest } from "../store.js";
import type { NatsContext } from "./context.js";
import type { Dispatcher } from "./dispatch.js";
import type { NatsFinish } from "./finish.js";
import { type StoredJob, toJobRecord } from "./job-codec.js";
import { candidates, matches } from "./queries.js";
import { isWaiting, retentionEnd } from "./transitions.js";

export type ConsumeAnswer =
  | { readonly status: "ok"; readonly record: JobRecord }
  | { readonly status: "not_finished" | "consumed" | "missing" };

/** A finished job leaves the record bucket and the listing index. */
export async function removeJob(ctx: NatsContext, job: StoredJob, revision: number): Promise<boolean> {
  if (!(await ctx.repo.remove(job.id, revision))) return false;
  await ctx.index.remove(job);
  return true;
}

export function makeControls(
  ctx: NatsContext,
  dispatcher: Dispatcher,
  finish: Pick<NatsFinish, "afterFinish">,
) {
  const { repo, events } = ctx;

  async function requestCancel(id: string, graceMs: number): Promise<CancelResult> {
    const now = Date.now();
    const changed = await repo.change(id, (job) => {
      if (isWaiting(job)) {
        return {
          ...job,
          state: "cancelled",
          finishedAt: now,
          error: { code: ErrorCode.Cancelled, message: "cancelled", retryable: false, attempt: job.attempts },
          expiresAt: retentionEnd(job, now),
        };
      }
      if (job.state === "running" && !job.cancelRequested) {
        return { ...job, cancelRequested: true, cancelDeadline: now + graceMs };
      }
      return undefined;
    });
    if (changed === undefined) {
      const found = await repo.read(id);
      return { state: found?.job.state };
    }
    const job = changed.after.job;
    if (job.state === "cancelled") {
      ctx.counters.count({ cancelled: 1 });
      await finish.afterFinish(job, false);
      events.changed([id]);
    } else {
      events.send({ type: "cancel", id, graceMs }, { x: [id, graceMs] });
    }
    return { state: job.state };
  }

  async function detach(id: string): Promise<boolean> {
    const now = Date.now();
    const changed = await repo.change(id, (job) =>
      job.detached && job.cookieHash === null
        ? undefined
        : {
            ...job,
            detached: true,
            cookieHash: null,
            result: null,
            expiresAt: isFinished(job.state)
              ? Math.min(job.expiresAt ?? now, retentionEnd(job, now))
              : job.expiresAt,
          },
    );
    if (changed === undefined) return (await repo.read(id)) !== undefined;
    events.changed([id]);
    return true;
  }

  return {
    async consumeResult(id: string): Promise<ConsumeAnswer> {
      let answer: "not_finished" | "consumed" | "missing" | undefined;
      const changed = await repo.change(id, (job) => {
        if (!isFinished(job.state)) answer = "not_finished";
        else if (job.consumed) answer = "consumed";
        else return { ...job, consumed: true, payload: null, result: null };
        return undefined;
      });
      if (changed === undefined) return { status: answer ?? "missing" };
      events.changed([id]);
      return { status: "ok", record: toJobRecord({ ...changed.after.job, result: changed.before.result }) };
    },

    requestCancel,

    async cancelMany(filter: JobFilter, graceMs: number): Promise<number> {
      let reached = 0;
      for await (const { job } of candidates(ctx, filter)) {
        if (isFinished(job.state) || !matches(job, filter)) continue;
        const { state } = await requestCancel(job.id, graceMs);
        if (state !== undefined) reached += 1;
      }
      return reached;
    },

    detach,

    async detachMany(filter: JobFilter): Promise<number> {
      let n = 0;
      for await (const { job } of candidates(ctx, filter)) {
        if (matches(job, filter) && (await detach(job.id))) n += 1;
      }
      return n;
    },

    async retry(id: string): Promise<boolean> {
      const now = Date.now();
      const changed = await repo.change(id, (job) =>
        job.state === "failed" || job.state === "cancelled"
          ? {
              ...job,
              state: "queued",
              attempts: 0,
              runAt: now,
              finishedAt: null,
              error: null,
              cancelRequested: false,
              cancelDeadline: null,
              expiresAt: null,
              consumed: false,
            }
          : undefined,
      );
      if (changed === undefined) return false;
      await dispatcher.redispatch(id, changed.after);
      events.changed([id]);
      return true;
    },

    async purge(request: PurgeRequest): Promise<number> {
      const before = Date.now() - request.olderThanMs;
      let n = 0;
      for await (const { job, revision } of repo.scan()) {
        if (!isFinished(job.state) || (request.state !== undefined && job.state !== request.state)) continue;
        if ((job.finishedAt ?? 0) > before) continue;
        if (await removeJob(ctx, job, revision)) n += 1;
      }
      return n;
    },
  };
}
