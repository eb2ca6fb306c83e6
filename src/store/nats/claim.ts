/**
 * Claiming on the NATS store: a worker's round pulls dispatches from the durable consumers of its
 * queues, per (priority band, handler), oldest first within a band; the job's record (never the
 * message) decides whether a dispatch is claimed, put back until it is due, or dropped as stale.
 */
import { isFinished } from "../../core/job.js";
import type { ClaimedJob, ClaimRequest, ClaimResult, StoreEvent } from "../store.js";
import { announceHeld, type NatsContext } from "./context.js";
import type { NatsFinish } from "./finish.js";
import { toClaimedJob } from "./job-codec.js";
import { BANDS } from "./names.js";
import { Puller, type WorkMessage } from "./pull.js";
import { queueInfo } from "./registry.js";
import { claimed } from "./transitions.js";
import { WakeTimers } from "./wake-timers.js";

/** A dispatch of a job whose group is full is looked at again after this. */
const GROUP_FULL_RETRY_MS = 250;
/** A dispatch pulled from a queue paused meanwhile is looked at again after this. */
const PAUSED_RETRY_MS = 1_000;
/** A dispatch whose claim failed midway (NATS did not answer) is looked at again after this. */
const FAILED_TAKE_RETRY_MS = 1_000;
/** A dispatch whose record is not found is looked at again after this, up to this many times. */
const MISSING_RECORD_RETRY_MS = 1_000;
const MISSING_RECORD_DELIVERIES = 5;
/** Longest single nak delay: a job due later is looked at again after this. */
const MAX_NAK_MS = 3_600_000;

export function makeClaim(ctx: NatsContext, finish: Pick<NatsFinish, "finish" | "rescueOne">) {
  const { names, repo } = ctx;
  /** Per queue: the subjects' message counts from the last claim round, less what it pulled. */
  const backlogs = new Map<string, Record<string, number>>();
  /** Per queue: how many launch announcements this process has seen (a new one voids `backlogs`). */
  const launchesSeen = new Map<string, number>();
  const consumers = new Map<string, Promise<void>>();
  /** The queue of each consumer this store pulled from. */
  const consumerQueues = new Map<string, string>();
  /** Queues this process's workers take from: woken after a reconnect. */
  const queuesClaimed = new Set<string>();
  const wakeTimers = new WakeTimers((queue) => ctx.events.emit({ type: "enqueued", queue }));
  // A message handed back after its pull gave up is waiting again: tell this process's workers,
  // or they would find it only at their next poll.
  const puller = new Puller(ctx.r.nc, ctx.r.requests, (consumer) => {
    const queue = consumerQueues.get(consumer);
    if (queue !== undefined) setTimeout(() => ctx.events.emit({ type: "enqueued", queue }), 5).unref();
  });
  ctx.events.on((event: StoreEvent) => {
    if (event.type !== "enqueued") return;
    launchesSeen.set(event.queue, (launchesSeen.get(event.queue) ?? 0) + 1);
    backlogs.delete(event.queue);
  });

  async function claimJobs(request: ClaimRequest): Promise<ClaimedJob[]> {
    for (const queue of request.queues) queuesClaimed.add(queue);
    const jobs: ClaimedJob[] = [];
    for (const queue of request.queues) {
      if (jobs.length >= request.limit) break;
      // Which (band, handler) subjects hold messages at all (waiting or out with a worker): the
      // others are not pulled, since an empty pull waits for its request to expire. The last
      // round's view, less what it pulled, stands in while nothing was launched on the queue since
      // (a backlog being drained); the pause is checked after the pull either way.
      const generation = launchesSeen.get(queue) ?? 0;
      let backlog = backlogs.get(queue);
      backlogs.delete(queue);
      if (backlog === undefined) {
        const [queueState, held] = await Promise.all([
          queueInfo(ctx, queue),
          ctx.r.messagesBySubject(names.queueSubjects(queue)),
        ]);
        if (queueState.paused) continue;
        backlog = { ...held };
      }
      const view = { backlog, paused: false };
      for (const band of BANDS) {
        if (jobs.length >= request.limit) break;
        const waiting = request.handlers
          .map((handler) => ({
            handler,
            messages: backlog[names.workSubject(queue, band, handler)] ?? 0,
          }))
          .filter((h) => h.messages > 0);
        if (waiting.length > 0)
          jobs.push(...(await claimBand(queue, band, waiting, request, request.limit - jobs.length, view)));
      }
      const more = Object.values(backlog).some((n) => n > 0);
      if (more && !view.paused && (launchesSeen.get(queue) ?? 0) === generation) backlogs.set(queue, backlog);
    }
    return jobs;
  }

  /**
   * Claims up to `want` jobs of one band, oldest first across its handlers (the stream sequence
   * orders them): each handler's consumer is pulled, the answers merged, and what is beyond `want`
   * goes straight back.
   */
  async function claimBand(
    queue: string,
    band: (typeof BANDS)[number],
    waiting: readonly { readonly handler: string; readonly messages: number }[],
    request: ClaimRequest,
    want: number,
    view: { readonly backlog: Record<string, number>; paused: boolean },
  ): Promise<ClaimedJob[]> {
    const sources = await Promise.all(
      waiting.map(async ({ handler, messages }) => {
        const consumer = names.consumer(queue, band, handler);
        const subject = names.workSubject(queue, band, handler);
        await ensureConsumer(consumer, subject);
        consumerQueues.set(consumer, queue);
        return { consumer, subject, messages, open: true };
      }),
    );
    const jobs: ClaimedJob[] = [];
    let failure: unknown;
    // Stale dispatches (of jobs finished, cancelled or re-dispatched since) yield nothing and are
    // dropped: pull again, a few times, to fill the request with live ones.
    for (let pulls = 0; pulls < 4 && jobs.length < want; pulls++) {
      const left = want - jobs.length;
      const asking = sources.filter((source) => source.open);
      if (asking.length === 0) break;
      // Asked every time (an empty answer is one quick round trip): a cache of "empty" would hide a
      // job another process launched a moment ago. No more than a subject holds: a request for
      // more waits out its expiry on the server.
      const answers = await Promise.all(
        asking.map(async (source) => {
          const asked = Math.min(left, source.messages);
          const answer = await puller.pull(names.workStream, source.consumer, asked);
          // A short, answered reply means this consumer is drained for now. Unanswered: a message
          // may have reached the request after we gave up on it (it comes back at once), so ask again.
          if (answer.answered && answer.messages.length < asked) source.open = false;
          const remaining = source.open ? (view.backlog[source.subject] ?? 0) - answer.messages.length : 0;
          view.backlog[source.subject] = Math.max(0, remaining);
          return answer.messages;
        }),
      );
      const messages = answers.flat().sort((a, b) => a.streamSequence - b.streamSequence);
      if (messages.length === 0) continue;
      // The pause may have come between our first look and the pull (a launch after a pause must
      // stay queued): look again now that there is something to take.
      if ((await queueInfo(ctx, queue)).paused) {
        for (const message of messages) putBack(message, queue, PAUSED_RETRY_MS);
        view.paused = true;
        break;
      }
      for (const extra of messages.splice(left)) extra.nak(1);
      // Settled one by one: a failure on one message must not lose the jobs already claimed beside
      // it (their records say running; only this answer knows it). The held list is written at the
      // same time, naming every job this round may claim, so it costs no round trip of its own.
      for (const message of messages) ctx.claiming.add(message.jobId);
      const [taken] = await Promise.all([
        Promise.allSettled(messages.map((m) => take(m, request))),
        announceHeld(ctx),
      ]);
      for (const message of messages) ctx.claiming.delete(message.jobId);
      for (const [i, outcome] of taken.entries()) {
        if (outcome.status === "fulfilled") {
          if (outcome.value !== undefined) jobs.push(outcome.value);
        } else {
          messages[i]!.nak(FAILED_TAKE_RETRY_MS);
          failure ??= outcome.reason;
        }
      }
    }
    if (jobs.length === 0 && failure !== undefined) throw failure;
    return jobs;
  }

  /** A dispatch goes back on the stream for `delayMs`; this process's workers look again then. */
  function putBack(message: WorkMessage, queue: string, delayMs: number): void {
    message.nak(delayMs);
    wakeTimers.after(queue, delayMs);
  }

  function ensureConsumer(name: string, subject: string): Promise<void> {
    let ready = consumers.get(name);
    if (ready === undefined) {
      ready = ctx.r.ensureConsumer(name, subject);
      ready.catch(() => consumers.delete(name));
      consumers.set(name, ready);
    }
    return ready;
  }

  /**
   * Decides what one delivered dispatch means, from the job's record (never from the message): claim
   * it, wait (nak) until it is due or its holder's lease ends, or drop a stale dispatch.
   */
  async function take(message: WorkMessage, request: ClaimRequest): Promise<ClaimedJob | undefined> {
    // The record as it was published with this dispatch: when nothing changed since, the claim's
    // compare-and-set needs no read first (a stale snapshot just loses and reads).
    let snapshot = message.snapshot();
    for (let race = 0; race < 20; race++) {
      const current = snapshot ?? (await repo.read(message.jobId));
      snapshot = undefined;
      if (current === undefined && message.deliveries < MISSING_RECORD_DELIVERIES) {
        // A replicated KV may answer a read from a replica that has not caught up yet: a missing
        // record is believed only after a few deliveries (a dispatch dropped here is a job lost).
        putBack(message, consumerQueues.get(message.consumer) ?? "", MISSING_RECORD_RETRY_MS);
        return undefined;
      }
      if (current === undefined || isFinished(current.job.state)) {
        message.term();
        return undefined;
      }
      const now = Date.now();
      const { job } = current;
      if (job.state === "running") {
        if ((job.leaseExpiresAt ?? 0) > now) {
          // Its holder is alive (this is a redelivery it did not keep): look again when the lease ends.
          putBack(message, job.queue, Math.min((job.leaseExpiresAt ?? now) - now + 100, MAX_NAK_MS));
          return undefined;
        }
        await finish.rescueOne(current);
        continue;
      }
      if (job.pendingDeps > 0) {
        // Dispatched again when its last parent completes.
        message.term();
        return undefined;
      }
      if (job.runAt > now) {
        putBack(message, job.queue, Math.min(job.runAt - now, MAX_NAK_MS));
        return undefined;
      }
      const settings = job.group === null ? undefined : await queueInfo(ctx, job.queue);
      const limit = settings?.groupConcurrency ?? null;
      if (
        job.group !== null &&
        limit !== null &&
        !(await ctx.slots.take(job.queue, job.group, limit, job.id))
      ) {
        // Its group is full: back on the stream for a moment (a finishing job announces its queue).
        putBack(message, job.queue, GROUP_FULL_RETRY_MS);
        return undefined;
      }
      const rate = settings?.groupRate ?? null;
      const waitMs =
        job.group === null || rate === null ? 0 : await ctx.rates.take(job.queue, job.group, rate, now);
      if (waitMs > 0) {
        // Its group used up this window's starts: back on the stream until the next window.
        if (job.group !== null && limit !== null)
          await ctx.slots.release(job.queue, job.group, limit, job.id);
        putBack(message, job.queue, Math.min(waitMs, MAX_NAK_MS));
        return undefined;
      }
      const next = claimed(job, request.workerId, request.leaseMs, now);
      const revision = await repo.write(next, current.revision);
      if (revision === undefined) {
        if (job.group !== null && limit !== null)
          await ctx.slots.release(job.queue, job.group, limit, job.id);
        if (job.group !== null && rate !== null) await ctx.rates.giveBack(job.queue, job.group, rate, now);
        continue;
      }
      ctx.held.set(job.id, { message, known: { job: next, revision } });
      ctx.events.changed([job.id], true);
      return toClaimedJob(next);
    }
    message.nak(1_000);
    return undefined;
  }

  return {
    async claim(request: ClaimRequest): Promise<ClaimResult> {
      // No transaction ties them together here, so the outcomes and the claim go at the same time.
      const [applied, jobs] = await Promise.all([
        request.finished?.length ? finish.finish(request.finished) : Promise.resolve([]),
        claimJobs(request),
      ]);
      if (jobs.length > 0)
        ctx.keeper?.keepLeases(request.workerId, jobs, request.leaseMs, Date.now() + ctx.stallMs, true);
      return { jobs, applied };
    },

    /**
     * Events sent while the link was down are lost (core NATS keeps nothing): once reconnected, the
     * workers of this process look for work at once instead of at their next poll.
     */
    async wakeOnReconnect(): Promise<void> {
      for await (const status of ctx.r.nc.status()) {
        if (ctx.closed) return;
        if (status.type !== "reconnect") continue;
        for (const queue of queuesClaimed) ctx.events.emit({ type: "enqueued", queue });
      }
    },

    /** No more wake-ups for dispatches put back. */
    stopWaking(): void {
      wakeTimers.close();
    },

    close(): void {
      puller.close();
    },
  };
}
