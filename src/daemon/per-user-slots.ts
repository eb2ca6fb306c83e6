/**
 * A cap on how many of something each user holds at once (calls in flight, open watches): taking
 * a slot past the cap answers a FERRY_QUOTA_EXCEEDED refusal instead of a release. Only users
 * holding slots are remembered, so the map never grows with users who come and go.
 */
import { ErrorCode, FerryError } from "../core/errors.js";

export class PerUserSlots {
  readonly #maxPerUser: number;
  readonly #refusal: string;
  readonly #held = new Map<string, number>();

  /** `refusal`: the message a caller past the cap reads (it names the config key). */
  constructor(maxPerUser: number, refusal: string) {
    this.#maxPerUser = maxPerUser;
    this.#refusal = refusal;
  }

  /** One more slot for `user`: the function that gives it back (once), or the refusal. */
  take(user: string): (() => void) | FerryError {
    const held = this.#held.get(user) ?? 0;
    if (held >= this.#maxPerUser) return new FerryError(ErrorCode.QuotaExceeded, this.#refusal);
    this.#held.set(user, held + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.#held.get(user) ?? 1) - 1;
      if (left <= 0) this.#held.delete(user);
      else this.#held.set(user, left);
    };
  }
}
