/**
 * Long calls each user holds open at once (`Watch` streams and `Wait` long-polls): each one keeps
 * a store subscription and re-reads the job's status, so many of them from one user would slow
 * the daemon for everyone. Past `maxPerUser` a new one is refused with FERRY_QUOTA_EXCEEDED
 * before it subscribes to anything; the ones already open go on.
 */
import { FerryError } from "../core/errors.js";
import { PerUserSlots } from "./per-user-slots.js";

export class OpenWatches {
  readonly #slots: PerUserSlots;

  constructor(maxPerUser: number) {
    this.#slots = new PerUserSlots(
      maxPerUser,
      `at most ${maxPerUser} Watch and Wait calls open at once per user (limits.max_watches_per_user)`,
    );
  }

  /** Counts one more long call for `user`; call the answer when it ends. Throws past the cap. */
  open(user: string): () => void {
    const taken = this.#slots.take(user);
    if (taken instanceof FerryError) throw taken;
    return taken;
  }
}
