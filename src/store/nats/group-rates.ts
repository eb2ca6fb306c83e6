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

const rateKey = (queue: string, group: string): string =>
  `grate.${queue}.${createHash("sha256").update(group).digest("hex").slice(0, 32)}`;

interface WindowCount {
  readonly window: number;
  readonly starts: number;
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
      const value = JSON.stringify({ window, starts: starts + 1 } satisfies WindowCount);
      try {
        if (entry === null) await this.meta.create(key, value);
        else await this.meta.update(key, value, entry.revision);
        return 0;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
  }
}
