/**
 * Long calls each user holds open at once (`Watch` streams and `Wait` long-polls): each one keeps
 * a store subscription and re-reads the job's status, so many of them from one user would slow
 * the daemon for everyone. Past `maxPerUser` a new one is refused with FERRY_QUOTA_EXCEEDED
 * before it subscribes to anything; the ones already open go on.
 */
import { ErrorCode, FerryError } from "../core/errors.js";

export class OpenWatches {
  readonly #maxPerUser: number;
  readonly #open = new Map<string, number>();

  constructor(maxPerUser: number) {
    this.#maxPerUser = maxPerUser;
  }

  /** Counts one more long call for `user`; call the answer when it ends. Throws past the cap. */
  open(user: string): () => void {
    const held = this.#open.get(user) ?? 0;
    if (held >= this.#maxPerUser) {
      throw new FerryError(
        ErrorCode.QuotaExceeded,
        `at most ${this.#maxPerUser} Watch and Wait calls open at once per user (limits.max_watches_per_user)`,
      );
    }
    this.#open.set(user, held + 1);
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const left = (this.#open.get(user) ?? 1) - 1;
      // Only users with calls open are remembered.
      if (left <= 0) this.#open.delete(user);
      else this.#open.set(user, left);
    };
  }
}
