/**
 * Finds what has made no progress for a while: a request body that sends nothing, an answer the
 * client does not take. Either holds the daemon's memory (body bytes reserved in the budget, answer
 * bytes queued to send) for as long as the client likes, which time limits per connection do not
 * stop (HTTP/2 PINGs keep a session alive). One timer for everything watched, not one per call:
 * a call costs a Set insert and delete, and the timer runs only while something is watched.
 */
export class StallWatch {
  readonly #timeoutMs: number;
  readonly #tickMs: number;
  readonly #watched = new Set<Watched>();
  #timer: NodeJS.Timeout | undefined;

  /** `timeoutMs`: how long without progress is a stall (found within a quarter of it more). */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#tickMs = Math.max(10, Math.min(1_000, Math.floor(timeoutMs / 4)));
  }

  /**
   * Watches one thing. `stuck` answers, at each tick, whether it made no progress since the last
   * one; once it has been stuck for the timeout, `onStall` runs (once) and the watch ends.
   * Returns the function that ends the watch.
   */
  watch(stuck: () => boolean, onStall: () => void): () => void {
    const entry: Watched = { stuck, onStall, stuckSince: undefined };
    this.#watched.add(entry);
    if (this.#timer === undefined) {
      this.#timer = setInterval(this.#tick, this.#tickMs);
      // Never what keeps the process alive.
      this.#timer.unref();
    }
    return () => this.#end(entry);
  }

  #end(entry: Watched): void {
    if (!this.#watched.delete(entry) || this.#watched.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #tick = () => {
    const now = Date.now();
    for (const entry of this.#watched) {
      if (!entry.stuck()) {
        entry.stuckSince = undefined;
        continue;
      }
      entry.stuckSince ??= now;
      if (now - entry.stuckSince < this.#timeoutMs) continue;
      this.#end(entry);
      try {
        entry.onStall();
      } catch {
        // A timer's throw would end the process: a stall that cannot be dropped is left be.
      }
    }
  };
}

interface Watched {
  readonly stuck: () => boolean;
  readonly onStall: () => void;
  stuckSince: number | undefined;
}
