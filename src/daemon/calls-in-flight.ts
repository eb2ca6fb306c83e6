/**
 * Calls each user has in flight at once, counted from admission until the answer has left the
 * daemon (the response's `close`: for an answer the client does not read, not before it is sent or
 * the stream reset). Each holds its answer in memory until then, so a user who never reads (an
 * HTTP/2 window of 0) could pile up hundreds of large answers: past `maxPerUser` a new call is
 * refused with FERRY_QUOTA_EXCEEDED before it runs. Long calls (Watch, Wait) are not counted here:
 * `limits.max_watches_per_user` bounds them (open-watches.ts) and their answers are small.
 */
import { ErrorCode, FerryError } from "../core/errors.js";

export class CallsInFlight {
  readonly #maxPerUser: number;
  readonly #held = new Map<string, number>();

  constructor(maxPerUser: number) {
    this.#maxPerUser = maxPerUser;
  }

  /** Counts one more call for `user` and answers the function that ends it, or the refusal. */
  enter(user: string): (() => void) | FerryError {
    const held = this.#held.get(user) ?? 0;
    if (held >= this.#maxPerUser) {
      return new FerryError(
        ErrorCode.QuotaExceeded,
        `at most ${this.#maxPerUser} calls in flight at once per user (limits.max_calls_in_flight_per_user): ` +
          "read the answers you have asked for",
      );
    }
    this.#held.set(user, held + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const now = (this.#held.get(user) ?? 1) - 1;
      // Only users with calls in flight are remembered.
      if (now <= 0) this.#held.delete(user);
      else this.#held.set(user, now);
    };
  }
}
