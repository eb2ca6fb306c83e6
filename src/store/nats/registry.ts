/**
 * Queues and workers of the NATS store, in the meta bucket: `queue.<name>` (paused, group limits;
 * none stored: the defaults) and `worker.<id>` (the worker as of its last heartbeat).
 */
import type { KvEntry } from "@nats-io/kv";
import type { QueueInfo, QueueOptionsUpdate, WorkerInfo } from "../store.js";
import type { NatsContext } from "./context.js";
import { isRevisionConflict } from "./job-repo.js";
import { listKeys } from "./kv-keys.js";

export async function queueInfo(ctx: NatsContext, name: string): Promise<QueueInfo> {
  return queueFromEntry(name, await ctx.r.meta.get(`queue.${name}`));
}

export function makeRegistry(ctx: NatsContext) {
  const { meta } = ctx.r;

  async function changeQueue(name: string, change: (q: QueueInfo) => QueueInfo): Promise<void> {
    for (;;) {
      const entry = await meta.get(`queue.${name}`);
      const { paused, groupConcurrency, groupRate } = change(queueFromEntry(name, entry));
      const value = JSON.stringify({ paused, groupConcurrency, groupRate });
      try {
        if (entry === null) await meta.create(`queue.${name}`, value);
        else await meta.update(`queue.${name}`, value, entry.revision);
        return;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
  }

  return {
    async setPaused(queue: string, paused: boolean): Promise<void> {
      await changeQueue(queue, (q) => ({ ...q, paused }));
      if (!paused) ctx.events.announce([{ type: "enqueued", queue }]);
    },

    async setOptions(queue: string, options: QueueOptionsUpdate): Promise<void> {
      await changeQueue(queue, (q) => ({
        ...q,
        ...(options.groupConcurrency === undefined ? {} : { groupConcurrency: options.groupConcurrency }),
        ...(options.groupRate === undefined ? {} : { groupRate: options.groupRate }),
      }));
    },

    async listQueues(): Promise<QueueInfo[]> {
      const out: QueueInfo[] = [];
      for (const key of await listKeys(meta, "queue.*")) {
        const q = await queueInfo(ctx, key.slice("queue.".length));
        out.push(q);
      }
      return out.sort((a, b) => (a.name < b.name ? -1 : 1));
    },

    async removeWorker(workerId: string): Promise<void> {
      ctx.keeper?.forget(workerId);
      await meta.purge(`worker.${workerId}`).catch(() => undefined);
    },

    async listWorkers(): Promise<WorkerInfo[]> {
      const out: WorkerInfo[] = [];
      for (const key of await listKeys(meta, "worker.*")) {
        const entry = await meta.get(key);
        if (entry?.operation === "PUT") out.push(entry.json<WorkerInfo>());
      }
      return out;
    },
  };
}

/** Drops the workers whose last heartbeat is older than `before`. */
export async function dropStaleWorkers(ctx: NatsContext, before: number): Promise<void> {
  const { meta } = ctx.r;
  for (const key of await listKeys(meta, "worker.*")) {
    const entry = await meta.get(key);
    if (entry?.operation !== "PUT") continue;
    if (entry.json<WorkerInfo>().lastHeartbeatAt < before) {
      await meta.purge(key, { previousSeq: entry.revision }).catch(() => undefined);
    }
  }
}

/** A queue's settings from its meta entry; none stored: the defaults. */
function queueFromEntry(name: string, entry: KvEntry | null): QueueInfo {
  if (entry === null || entry.operation !== "PUT")
    return { name, paused: false, groupConcurrency: null, groupRate: null };
  const stored = entry.json<Partial<Omit<QueueInfo, "name">>>();
  return {
    name,
    paused: stored.paused ?? false,
    groupConcurrency: stored.groupConcurrency ?? null,
    // Absent from entries written before groupRate existed.
    groupRate: stored.groupRate ?? null,
  };
}
