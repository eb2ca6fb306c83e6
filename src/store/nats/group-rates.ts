/**
 * `groupRate` on NATS: one KV key per queue and group, `grate.<queue>.<group hash>`, holding the
 * current window's number and its starts. A claim counts its start by compare-and-set, so claimers
 * on every machine share the count; a new window overwrites the old one. Windows follow each
 * machine's clock, so clock skew between machines shifts a window's edges by that much.
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import { type GroupRate, rateWindow } from "../../core/group-rate.js";
import { isRevisionConflict } from "./job-repo.js";
import { dropKey, listKeys } from "./kv-keys.js";

const rateKey = (queue: string, group: string): string =>
  `grate.${queue}.${createHash("sha256").update(group).digest("hex").slice(0, 32)}`;

interface WindowCount {
  readonly window: number;
  readonly starts: number;
  /** The period the window was counted in, so a sweep can tell a finished window on its own. */
  readonly periodMs: number;
}

export class GroupRates {
  constructor(private readonly meta: KV) {}

  /**
   * Counts one start of the group in the window `now` falls in. Answers 0 when counted, else how
   * many ms until the next window (the group used up this one).
   */
  async take(queue: string, group: string, rate: GroupRate, now: number): Promise<number> {
    const key = rateKey(queue, group);
    const window = rateWindow(now, rate.periodMs);
    for (;;) {
      const entry = await this.meta.get(key);
      const seen = entry?.operation === "PUT" ? entry.json<WindowCount>() : undefined;
      const starts = seen?.window === window ? seen.starts : 0;
      if (starts >= rate.limit) return (window + 1) * rate.periodMs - now;
      const value = JSON.stringify({
        window,
        starts: starts + 1,
        periodMs: rate.periodMs,
      } satisfies WindowCount);
      try {
        if (entry === null) await this.meta.create(key, value);
        else await this.meta.update(key, value, entry.revision);
        return 0;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
  }

  /**
   * Takes back a start that `take` counted at `now` but that did not happen (the claim lost its
   * compare-and-set on the job, often to a dispatch's stale snapshot): without it, a group with
   * one start per window would spend it on every stale delivery and never start.
   */
  async giveBack(queue: string, group: string, rate: GroupRate, now: number): Promise<void> {
    const key = rateKey(queue, group);
    const window = rateWindow(now, rate.periodMs);
    for (;;) {
      const entry = await this.meta.get(key);
      if (entry?.operation !== "PUT") return;
      const seen = entry.json<WindowCount>();
      if (seen.window !== window || seen.starts <= 0) return;
      try {
        await this.meta.update(key, JSON.stringify({ ...seen, starts: seen.starts - 1 }), entry.revision);
        return;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
  }

  /** Deletes the counts of windows that have ended (they count as zero anyway); answers how many. */
  async pruneEnded(now: number): Promise<number> {
    let n = 0;
    for (const key of await listKeys(this.meta, "grate.>")) {
      const entry = await this.meta.get(key);
      if (entry?.operation !== "PUT") continue;
      const { window, periodMs } = entry.json<WindowCount>();
      if ((window + 1) * periodMs > now) continue;
      // Dropped whole (a purge would leave a marker per group for good). Not by revision: a claim
      // that counts a start of this group in the instant between the read and the drop loses that
      // count, so the group may start one job more in that window; that takes a sweep (hourly)
      // meeting a group that was idle for a whole window and starts again at that very moment.
      await dropKey(this.meta, key);
      n += 1;
    }
    return n;
  }
}
