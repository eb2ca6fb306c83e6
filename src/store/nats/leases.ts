/**
 * Leases on the NATS store: heartbeats renew the records of the jobs a worker holds (fenced), and
 * keep their dispatches with this process; progress is written the same way.
 */
import type { Progress } from "../../core/job.js";
import type { HeartbeatResult, LeaseRef, WorkerInfo } from "../store.js";
import type { NatsContext } from "./context.js";

/**
 * The dispatches of jobs this process runs stay with it (AckWait is short, see open.ts), as long as
 * their lease is live: a job whose lease ran out is left to redelivery and rescue.
 */
export function keepDispatchesAlive(ctx: NatsContext, ackWaitMs: number): NodeJS.Timeout {
  const keepAlive = setInterval(
    () => {
      const now = Date.now();
      for (const held of ctx.held.values())
        if ((held.known.job.leaseExpiresAt ?? 0) > now) held.message?.working();
    },
    Math.max(50, Math.floor(ackWaitMs / 3)),
  );
  keepAlive.unref();
  return keepAlive;
}

export function makeLeases(ctx: NatsContext) {
  const { repo } = ctx;

  async function renewLeases(
    leases: readonly LeaseRef[],
    leaseMs: number,
    now: number,
    lost: string[],
    cancelRequested: { id: string; graceLeftMs: number }[],
  ): Promise<void> {
    await Promise.all(
      leases.map(async (lease) => {
        const held = ctx.held.get(lease.id);
        held?.message?.working();
        const changed = await repo.change(
          lease.id,
          (job) =>
            job.state === "running" && job.fence === lease.fence
              ? { ...job, leaseExpiresAt: now + leaseMs }
              : undefined,
          held?.known,
        );
        if (changed === undefined) {
          lost.push(lease.id);
          return;
        }
        if (held !== undefined) held.known = changed.after;
        const job = changed.after.job;
        if (job.cancelRequested) {
          cancelRequested.push({ id: job.id, graceLeftMs: Math.max(0, (job.cancelDeadline ?? now) - now) });
        }
      }),
    );
  }

  return {
    async heartbeat(
      worker: WorkerInfo,
      leases: readonly LeaseRef[],
      leaseMs: number,
    ): Promise<HeartbeatResult> {
      const now = Date.now();
      await Promise.all([
        ctx.r.meta.put(`worker.${worker.id}`, JSON.stringify({ ...worker, lastHeartbeatAt: now })),
        // Keeps this process's held list fresh, so rescuers do not take it for a dead one's.
        ctx.holders.publish().catch(() => undefined),
      ]);
      const lost: string[] = [];
      const cancelRequested: { id: string; graceLeftMs: number }[] = [];
      try {
        await renewLeases(leases, leaseMs, now, lost, cancelRequested);
      } finally {
        // Workers heartbeat; bare Store users don't, and get no thread.
        if (ctx.stallMs > 0 && !ctx.closed) {
          ctx.keeper ??= ctx.r.startLeaseKeeper();
          const gone = new Set(lost);
          const kept = leases.filter((l) => !gone.has(l.id));
          ctx.keeper.keepLeases(worker.id, kept, leaseMs, Date.now() + ctx.stallMs);
        }
      }
      return { lost, cancelRequested };
    },

    async setProgress(lease: LeaseRef, progress: Progress): Promise<boolean> {
      const held = ctx.held.get(lease.id);
      const changed = await repo.change(
        lease.id,
        (job) => (job.state === "running" && job.fence === lease.fence ? { ...job, progress } : undefined),
        held?.known,
      );
      if (changed === undefined) return false;
      if (held !== undefined) held.known = changed.after;
      ctx.events.changed([lease.id], !changed.after.job.watched);
      return true;
    },
  };
}
