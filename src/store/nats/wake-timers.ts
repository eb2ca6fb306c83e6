/**
 * Local wake-ups for dispatches this process put back with a delay (a full group, a job due soon,
 * a paused queue). NATS redelivers such a message only when its delay is over, and nobody announces
 * that moment: without a timer, this process's workers would find it only at their next poll.
 * One timer per queue, kept at the earliest moment asked for.
 */
export class WakeTimers {
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #closed = false;

  constructor(private readonly wake: (queue: string) => void) {}

  /** Wakes `queue`'s workers `delayMs` from now (plus a margin for the redelivery itself). */
  after(queue: string, delayMs: number): void {
    if (this.#closed) return;
    const at = Date.now() + delayMs + WAKE_MARGIN_MS;
    const current = this.#timers.get(queue);
    if (current !== undefined && current.at <= at) return;
    if (current !== undefined) clearTimeout(current.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(queue);
      this.wake(queue);
    }, at - Date.now());
    timer.unref();
    this.#timers.set(queue, { at, timer });
  }

  close(): void {
    this.#closed = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}

/** A nak'ed message is back on its consumer a little after its delay. */
const WAKE_MARGIN_MS = 15;
