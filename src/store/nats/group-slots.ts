/**
 * `groupConcurrency` on NATS: a group may hold N slots, each a KV key
 * `gslot.<queue>.<group hash>.<n>` naming the job that holds it. A claim takes a slot with
 * create-if-absent (or by compare-and-set from a holder that is no longer running, e.g. one that
 * crashed); the job's next outcome lets it go. No count to drift: a slot is free when its holder
 * is not running.
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import type { JobRepo } from "./job-repo.js";
import { isRevisionConflict } from "./job-repo.js";

const slotKey = (queue: string, group: string, n: number): string =>
  `gslot.${queue}.${createHash("sha256").update(group).digest("hex").slice(0, 32)}.${n}`;

export class GroupSlots {
  constructor(
    private readonly meta: KV,
    private readonly jobs: JobRepo,
  ) {}

  /** Takes a free slot of the job's group for it; false when all `limit` slots are held. */
  async take(queue: string, group: string, limit: number, jobId: string): Promise<boolean> {
    for (let n = 0; n < limit; n++) {
      const key = slotKey(queue, group, n);
      try {
        await this.meta.create(key, jobId);
        return true;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
      const entry = await this.meta.get(key);
      if (entry === null) continue;
      const holder = entry.operation === "PUT" ? entry.string() : undefined;
      if (holder === jobId) return true;
      const held = holder === undefined ? undefined : await this.jobs.read(holder);
      if (held !== undefined && held.job.state === "running") continue;
      try {
        await this.meta.update(key, jobId, entry.revision);
        return true;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
    return false;
  }

  /** Lets go of the job's slot, if it holds one (up to `limit`, the group's current setting). */
  async release(queue: string, group: string, limit: number, jobId: string): Promise<void> {
    for (let n = 0; n < limit; n++) {
      const key = slotKey(queue, group, n);
      const entry = await this.meta.get(key);
      if (entry?.operation !== "PUT" || entry.string() !== jobId) continue;
      await this.meta.purge(key, { previousSeq: entry.revision }).catch(() => undefined);
      return;
    }
  }
}
