/**
 * The lifetime counters of the NATS store: per process, under `count.<origin>` in the meta bucket
 * (a key only that process writes, so none is hot), written 100 ms after a change; `stats()` sums
 * every process's key.
 */
import type { KV } from "@nats-io/kv";
import { type CounterDelta, noCounts } from "../stats.js";
import { CoalescedWrite } from "./coalesced-write.js";

export class Counters {
  readonly #counts: Required<CounterDelta> = noCounts();
  #dirty: NodeJS.Timeout | undefined;
  readonly #write: CoalescedWrite;

  constructor(
    meta: KV,
    origin: string,
    private readonly isClosed: () => boolean,
  ) {
    this.#write = new CoalescedWrite(() => meta.put(`count.${origin}`, JSON.stringify(this.#counts)));
  }

  count(delta: CounterDelta): void {
    let any = false;
    for (const [name, value] of Object.entries(delta) as [keyof CounterDelta, number][]) {
      if (!value) continue;
      this.#counts[name] += value;
      any = true;
    }
    if (any && this.#dirty === undefined && !this.isClosed()) {
      this.#dirty = setTimeout(() => {
        this.#dirty = undefined;
        void this.flush().catch(() => undefined);
      }, 100);
      this.#dirty.unref();
    }
  }

  /** This process's lifetime counters, under a key only it writes. */
  flush(): Promise<void> {
    return this.#write.run();
  }

  /** Drops the pending delayed write (closing flushes instead). */
  stop(): void {
    clearTimeout(this.#dirty);
  }
}
