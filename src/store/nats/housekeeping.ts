/**
 * Housekeeping on the NATS store: rescue of jobs whose holder vanished, pruning of expired records,
 * and jobs whose dispatch reached MaxDeliver. Rescue and pruning read what the held lists and the
 * expiry notes name (held-registry.ts, expiry-log.ts), plus one full sweep an hour across all
 * processes for what those missed.
 */
import { ErrorCode } from "../../core/errors.js";
import { isFinished } from "../../core/job.js";
import type { NatsContext } from "./context.js";
import { removeJob } from "./controls.js";
import type { Dispatcher } from "./dispatch.js";
import type { NatsFinish, Tally } from "./finish.js";
import { isRevisionConflict, type Versioned } from "./job-repo.js";
import { dropStaleWorkers } from "./registry.js";
import { isWaiting, retentionEnd } from "./transitions.js";

/** How often one process (any) scans every record to rescue and prune what the indexes missed. */
const SWEEP_MS = 3_600_000;

export function makeHousekeeping(
  ctx: NatsContext,
  dispatcher: Dispatcher,
  finish: Pick<NatsFinish, "afterFinish" | "rescueOne">,
) {
  const { repo, expiry } = ctx;

  /**
   * The backstop for what the held list and the expiry notes missed (a process that died between
   * two writes): one full scan of the records per `SWEEP_MS` across all processes, by whichever
   * process wins the compare-and-set on `sweep.<what>`, the first one `SWEEP_MS` after the first look.
   */
  async function claimSweep(what: "rescue" | "prune", now: number): Promise<boolean> {
    const key = `sweep.${what}`;
    const entry = await ctx.r.meta.get(key);
    const value = JSON.stringify({ at: now });
    try {
      // The first look starts the clock: a new installation has nothing to sweep yet.
      if (entry === null) {
        await ctx.r.meta.create(key, value);
        return false;
      }
      if (entry.operation === "PUT" && entry.json<{ at: number }>().at > now - SWEEP_MS) return false;
      await ctx.r.meta.update(key, value, entry.revision);
      return true;
    } catch (error) {
      if (isRevisionConflict(error)) return false;
      throw error;
    }
  }

  async function failPoisoned(jobId: string | undefined, deliveries: number | undefined): Promise<void> {
    if (jobId !== undefined) {
      const now = Date.now();
      const error = {
        code: ErrorCode.HandlerCrashed,
        message: `delivered ${deliveries ?? "too many"} times without finishing (MaxDeliver)`,
        retryable: false,
        attempt: 0,
      };
      const changed = await repo.change(jobId, (job) =>
        isFinished(job.state)
          ? undefined
          : {
              ...job,
              state: "failed",
              error: { ...error, attempt: job.attempts },
              finishedAt: now,
              workerId: null,
              leaseExpiresAt: null,
              expiresAt: retentionEnd(job, now),
            },
      );
      if (changed !== undefined) {
        ctx.counters.count({ failed: 1 });
        await finish.afterFinish(changed.after.job, false);
        ctx.events.changed([jobId]);
      }
    }
  }

  return {
    async rescueExpired(workerTtlMs: number): Promise<Readonly<Tally>> {
      const tally = { requeued: 0, failed: 0, cancelled: 0 };
      const now = Date.now();
      const rescueIfExpired = async (current: Versioned | undefined): Promise<void> => {
        const job = current?.job;
        if (current === undefined || job?.state !== "running") return;
        const forced = job.cancelRequested && (job.cancelDeadline ?? now) < now - 2_000;
        if ((job.leaseExpiresAt ?? 0) >= now && !forced) return;
        await finish.rescueOne(current, tally);
      };
      if (await claimSweep("rescue", now)) {
        for await (const current of repo.scan()) await rescueIfExpired(current);
      } else {
        // Only the jobs some process says it holds (held-registry.ts), not every record.
        const holders = await ctx.holders.list();
        const ids = new Set([...ctx.held.keys(), ...ctx.unheard, ...holders.flatMap((h) => h.ids)]);
        // An unheard launch that never landed, or already ended, needs no more listing.
        for (const id of ctx.unheard) {
          const found = await repo.read(id);
          if (found === undefined || found.job.state !== "running") ctx.unheard.delete(id);
        }
        for (const id of ids) await rescueIfExpired(await repo.read(id));
        for (const entry of holders) {
          if (entry.origin === ctx.origin || entry.at >= now - workerTtlMs) continue;
          // A process that went silent may have died between a launch's record and its dispatch:
          // dispatch what it listed and is still waiting. The message id (job id and dispatch count)
          // makes this a no-op when its dispatch did land within the duplicate window; past it, a
          // second ticket for one job, and the record lets only one of them claim it.
          for (const id of entry.ids) {
            const found = await repo.read(id);
            if (found !== undefined && isWaiting(found.job) && found.job.pendingDeps === 0)
              await dispatcher.publishDispatch(found);
          }
          await ctx.holders.forget(entry);
        }
      }
      await dropStaleWorkers(ctx, now - workerTtlMs);
      return tally;
    },

    async pruneExpired(limit: number): Promise<number> {
      const now = Date.now();
      let n = 0;
      const pruneIfDue = async (current: Versioned | undefined): Promise<boolean> => {
        const job = current?.job;
        if (current === undefined || job === undefined || !isFinished(job.state) || job.expiresAt === null)
          return false;
        if (job.expiresAt > now) {
          // Retention moved on since the note (a later write noted it too): keep it in view.
          expiry.note(job.id, job.expiresAt, true);
          return false;
        }
        return removeJob(ctx, job, current.revision);
      };
      if (await claimSweep("prune", now)) {
        for await (const current of repo.scan()) {
          if (n >= limit) break;
          if (await pruneIfDue(current)) n += 1;
        }
        await ctx.rates.pruneEnded(now);
      }
      // Only what the expiry notes say is due (expiry-log.ts); this process's own notes first.
      await expiry.flush();
      for (const note of await expiry.due(now)) {
        if (n >= limit) break;
        const ids = [...note.ids];
        while (ids.length > 0 && n < limit) if (await pruneIfDue(await repo.read(ids.shift()!))) n += 1;
        // Cut short by the limit: the rest goes back in a new note.
        for (const id of ids) expiry.note(id, now, true);
        await expiry.drop(note);
      }
      await expiry.flush();
      return n;
    },

    /**
     * A dispatch reached MaxDeliver: the server will not deliver it again, and in a work-queue stream
     * it would stay forever. Its job fails (as a crash loop does) and the message is deleted. The
     * advisory is a plain NATS message, so one sent while no process listened is missed: the job then
     * waits for `retry()` (docs/stores.md).
     */
    async onMaxDeliveries(data: Uint8Array): Promise<void> {
      const advisory = JSON.parse(new TextDecoder().decode(data)) as {
        stream_seq?: number;
        deliveries?: number;
      };
      if (typeof advisory.stream_seq !== "number") return;
      const sequence = advisory.stream_seq;
      try {
        await failPoisoned(await ctx.r.jobIdAt(sequence), advisory.deliveries);
      } finally {
        await ctx.r.deleteMessage(sequence);
      }
    },
  };
}
