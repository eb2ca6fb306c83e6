/**
 * Long calls that outlive a daemon restart: `wait`, `waitAny`, `drain` and `watch` read only, so
 * when the daemon cannot be reached they are simply made again, with growing pauses, until it
 * answers or `resumeForMs` of unreachability has passed. Every other error ends them at once.
 */
import { ErrorCode, FerryError } from "../core/errors.js";
import { isUnreachable, toFerryError } from "./errors.js";

const FIRST_PAUSE_MS = 100;
const LONGEST_PAUSE_MS = 2_000;

/** Keeps track of one long call's time without the daemon. */
export class Reconnecting {
  readonly #forMs: number;
  readonly #signal: AbortSignal | undefined;
  #since: number | undefined;
  #pause = FIRST_PAUSE_MS;

  constructor(forMs: number, signal: AbortSignal | undefined) {
    this.#forMs = forMs;
    this.#signal = signal;
  }

  /** The daemon answered: a later loss starts a new window. */
  reached(): void {
    this.#since = undefined;
    this.#pause = FIRST_PAUSE_MS;
  }

  /**
   * After a failed attempt: returns once it is worth trying again, or throws the error the caller
   * should see (the signal's reason when the caller gave up).
   */
  async retryAfter(error: unknown): Promise<void> {
    throwIfAborted(this.#signal);
    if (!isUnreachable(error)) throw toFerryError(error);
    const now = Date.now();
    this.#since ??= now;
    if (now - this.#since >= this.#forMs) throw toFerryError(error);
    await pause(this.#pause, this.#signal);
    this.#pause = Math.min(this.#pause * 2, LONGEST_PAUSE_MS);
  }
}

/** Runs `call` until it answers, making it again while the daemon cannot be reached. */
export async function resuming<T>(
  forMs: number,
  signal: AbortSignal | undefined,
  call: () => Promise<T>,
): Promise<T> {
  const reconnecting = new Reconnecting(forMs, signal);
  for (;;) {
    try {
      return await call();
    } catch (error) {
      await reconnecting.retryAfter(error);
    }
  }
}

/** An aborted call ends with the signal's reason (a FerryError when the caller gave none), as in the library. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted !== true) return;
  throw signal.reason instanceof Error
    ? signal.reason
    : new FerryError(ErrorCode.Cancelled, "the wait was aborted");
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      try {
        throwIfAborted(signal);
      } catch (reason) {
        reject(reason);
      }
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}
