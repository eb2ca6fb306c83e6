/**
 * Calls each user has in flight at once, counted from admission until the answer has left the
 * daemon (the response's `close`: for an answer the client does not read, not before it is sent or
 * the stream reset). Each holds its answer in memory until then, so a user who never reads (an
 * HTTP/2 window of 0) could pile up hundreds of large answers: past `maxPerUser` a new call is
 * refused with FERRY_QUOTA_EXCEEDED before it runs. Long calls (Watch, Wait) are not counted here:
 * `limits.max_watches_per_user` bounds them (open-watches.ts) and their answers are small.
 */
import type { FerryError } from "../core/errors.js";
import { PerUserSlots } from "./per-user-slots.js";

export class CallsInFlight {
  readonly #slots: PerUserSlots;

  constructor(maxPerUser: number) {
    this.#slots = new PerUserSlots(
      maxPerUser,
      `at most ${maxPerUser} calls in flight at once per user (limits.max_calls_in_flight_per_user): ` +
        "read the answers you have asked for",
    );
  }

  /** Counts one more call for `user` and answers the function that ends it, or the refusal. */
  enter(user: string): (() => void) | FerryError {
    return this.#slots.take(user);
  }
}
