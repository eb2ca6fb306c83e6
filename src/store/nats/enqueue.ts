/**
 * Launching on the NATS store: each job's record is created by compare-and-set (beside its listing
 * index key), linked to its parents, then dispatched on the work stream once it waits on none. A
 * launch offered to a waiting worker (direct dispatch) is created already claimed, with no dispatch.
 */
import { invalidArgument } from "../../core/errors.js";
import { canDispatch } from "../dispatch.js";
import { tallyParents } from "../rescue.js";
import type { DispatchOffer, EnqueueContext, EnqueueResult, NewJob } from "../store.js";
import { checkParent } from "../tenancy.js";
import { announceHeld, type NatsContext } from "./context.js";
import type { Dispatcher } from "./dispatch.js";
import { hashText, type StoredJob, toClaimedJob } from "./job-codec.js";
import type { Versioned } from "./job-repo.js";
import { queueInfo } from "./registry.js";
import { claimed, isWaiting, parentFinished } from "./transitions.js";
import { takeUniqueKey } from "./unique-keys.js";

export function makeEnqueue(ctx: NatsContext, dispatcher: Dispatcher) {
  const { repo, index, events, counters } = ctx;

  async function launchEach(
    jobs: readonly NewJob[],
    now: number,
    parents: ReadonlyMap<string, StoredJob>,
    results: EnqueueResult[],
    queues: Set<string>,
    launched: (failedAtLaunch: boolean) => void,
  ): Promise<void> {
    for (const job of jobs) {
      const holder = job.uniqueKey === null ? undefined : await takeUniqueKey(ctx, job);
      if (holder !== undefined) {
        results.push({ id: holder, deduplicated: true });
        continue;
      }
      const record = newRecord(job, now, parents);
      const [revision] = await Promise.all([
        repo.create(record).catch((error: unknown) => {
          // The answer was lost, not necessarily the write: if the record landed, dispatch it later.
          dispatcher.recoverLaunch(job.id, 250);
          throw error;
        }),
        index.add(record),
      ]);
      if (revision === undefined) throw invalidArgument(`a job with id ${job.id} exists`);
      // Linked after the child exists: a parent that finishes meanwhile is re-checked below.
      for (const parentId of job.dependsOn) await linkChild(parentId, job.id);
      let current: Versioned = { job: record, revision };
      if (job.dependsOn.length > 0) current = (await recountParents(current, job.dependsOn)) ?? current;
      if (isWaiting(current.job) && current.job.pendingDeps === 0) {
        await dispatcher.dispatch(current);
        queues.add(job.queue);
      }
      // A parent had already failed: stored failed, and counted as a failure.
      launched(current.job.state === "failed");
      results.push({ id: job.id, deduplicated: false });
    }
  }

  /**
   * Direct dispatch (EnqueueContext.dispatch): the record is created already claimed by the
   * offering worker, and no dispatch message is published (the worker holds no message to ack).
   * Launch to start is one write, beside this process's held list, which names the job so that a
   * rescuer finds it if this process dies: the rescue re-dispatches it like any other. A queue
   * found paused gets the job back as an ordinary waiting launch.
   */
  async function launchClaimed(job: NewJob, offer: DispatchOffer, now: number): Promise<EnqueueResult> {
    const waiting = newRecord(job, now, new Map());
    const record = claimed(waiting, offer.workerId, offer.leaseMs, now);
    ctx.launching.add(job.id);
    let revision: number | undefined;
    let paused: boolean;
    try {
      // The pause is looked at beside the write, not before it: one round trip from launch to start.
      [revision, , , paused] = await Promise.all([
        repo.create(record),
        index.add(record),
        announceHeld(ctx),
        queueInfo(ctx, job.queue).then((q) => q.paused),
      ]);
      if (revision === undefined) throw invalidArgument(`a job with id ${job.id} exists`);
      ctx.held.set(job.id, { message: undefined, known: { job: record, revision } });
      ctx.launching.delete(job.id);
    } catch (error) {
      // The record may have landed, claimed by a worker that will never hear of it: it stays on
      // this process's held list until a rescue (after its lease) takes it over.
      ctx.unheard.add(job.id);
      ctx.launching.delete(job.id);
      throw error;
    }
    counters.count({ launched: 1 });
    if (paused) {
      // The queue is paused: the job waits like any other launch (a cancel meanwhile stands).
      ctx.held.delete(job.id);
      const back = await repo.write(waiting, revision);
      if (back === undefined) ctx.unheard.add(job.id);
      else {
        await dispatcher.dispatch({ job: waiting, revision: back });
        events.announce([{ type: "enqueued", queue: job.queue }]);
      }
      return { id: job.id, deduplicated: false };
    }
    events.changed([job.id], true);
    const taken = toClaimedJob(record);
    ctx.keeper?.keepLeases(offer.workerId, [taken], offer.leaseMs, Date.now() + ctx.stallMs, true);
    return { id: job.id, deduplicated: false, claimed: taken };
  }

  async function linkChild(parentId: string, childId: string): Promise<void> {
    await repo.change(parentId, (parent) =>
      parent.children.includes(childId) ? undefined : { ...parent, children: [...parent.children, childId] },
    );
  }

  /** Re-reads a child's parents after linking: one may have finished before it saw the link. */
  async function recountParents(
    child: Versioned,
    parentIds: readonly string[],
  ): Promise<Versioned | undefined> {
    const now = Date.now();
    const parents = await repo.readMany(parentIds);
    const { pending, failedParent } = tallyParents(
      parents.map((p) => ({ id: p.job.id, state: p.job.state })),
    );
    const changed = await repo.change(
      child.job.id,
      (job) => {
        if (!isWaiting(job)) return undefined;
        if (failedParent !== undefined) return parentFinished(job, failedParent, false, now);
        return job.pendingDeps === pending ? undefined : { ...job, pendingDeps: pending };
      },
      child,
    );
    return changed?.after;
  }

  return async function enqueue(
    jobs: readonly NewJob[],
    context: EnqueueContext = {},
  ): Promise<EnqueueResult[]> {
    if (context.tx !== undefined) {
      throw invalidArgument("tx (a caller's transaction) is for the PostgreSQL store only");
    }
    const now = Date.now();
    const only = jobs.length === 1 ? jobs[0] : undefined;
    if (context.dispatch !== undefined && only !== undefined && canDispatch(only)) {
      return [await launchClaimed(only, context.dispatch, now)];
    }
    // Parents are checked before anything is written: a missing one fails the whole call.
    const parentIds = [...new Set(jobs.flatMap((j) => j.dependsOn))];
    const parents = new Map((await repo.readMany(parentIds)).map((v) => [v.job.id, v.job]));
    const inBatch = new Map(jobs.map((j) => [j.id, j]));
    for (const job of jobs) {
      for (const id of job.dependsOn) checkParent(job, parents.get(id) ?? inBatch.get(id));
    }
    const results: EnqueueResult[] = [];
    const queues = new Set<string>();
    let launched = 0;
    let failedAtLaunch = 0;
    // The held list names the batch while its records and dispatches are written (beside the first
    // write, not before it: no round trip of its own); see rescueExpired.
    for (const job of jobs) ctx.launching.add(job.id);
    const listed = announceHeld(ctx);
    try {
      await launchEach(jobs, now, parents, results, queues, (failed) => {
        launched += 1;
        if (failed) failedAtLaunch += 1;
      });
      await listed;
    } finally {
      for (const job of jobs) ctx.launching.delete(job.id);
      // Off the list again (not waited for; bursts share the write): a process that only launches
      // must not be read as holding jobs once it is quiet.
      void announceHeld(ctx);
    }
    counters.count({ launched, failed: failedAtLaunch });
    events.announce([...queues].map((queue) => ({ type: "enqueued", queue })));
    return results;
  };
}

function newRecord(job: NewJob, now: number, parents: ReadonlyMap<string, StoredJob>): StoredJob {
  const { pending, failedParent } = tallyParents(
    job.dependsOn.map((id) => ({ id, state: parents.get(id)?.state ?? "queued" })),
  );
  const runAt = job.runAt ?? now + job.delayMs;
  const base: StoredJob = {
    id: job.id,
    handler: job.handler,
    queue: job.queue,
    state: runAt > now ? "scheduled" : "queued",
    priority: job.priority,
    owner: job.owner,
    label: job.label,
    group: job.group,
    uniqueKey: job.uniqueKey,
    serializer: job.serializer,
    cookieHash: hashText(job.cookieHash),
    attempts: 0,
    maxAttempts: job.maxAttempts,
    policy: job.policy,
    progress: null,
    launchedAt: now,
    runAt,
    startedAt: null,
    finishedAt: null,
    error: null,
    consumed: false,
    detached: job.detached,
    cancelRequested: false,
    cancelDeadline: null,
    fence: 0,
    workerId: null,
    leaseExpiresAt: null,
    pendingDeps: pending,
    children: [],
    watched: false,
    expiresAt: null,
    dispatches: 0,
    payload: job.payload,
    result: null,
  };
  if (failedParent === undefined) return base;
  return parentFinished(base, failedParent, false, now) ?? base;
}
