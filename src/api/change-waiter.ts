import type { Store, StoreEvent } from "../store/store.js";

/**
 * Wakes callers waiting on particular jobs. One store subscription serves every waiter; stores
 * whose events don't cross processes (SQLite) are polled as well, so a job finished by another
 * process is seen within `pollMs`.
 */
export class ChangeWaiter {
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #unsubscribe: () => void;
  readonly #store: Store;
  /** Ids this process asked the store to announce (bounded; re-marking is harmless). */
  readonly #marked = new Set<string>();
  readonly pollMs: number;

  constructor(store: Store) {
    this.#store = store;
    this.pollMs = store.sharedEvents ? 5_000 : 100;
    this.#unsubscribe = store.subscribe((event: StoreEvent) => {
      if (event.type !== "changed") return;
      const set = this.#waiters.get(event.id);
      if (set === undefined) return;
      this.#waiters.delete(event.id);
      for (const wake of set) wake();
    });
  }

  /**
   * Resolves at the next change of any of `ids`, at the next poll, after `maxMs`, or when `signal`
   * aborts, whichever is first.
   */
  async next(ids: readonly string[], maxMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    if (this.#store.markWatched !== undefined) {
      const fresh = ids.filter((id) => !this.#marked.has(id));
      if (fresh.length > 0) {
        // First wait on these: ask the store to announce their changes, then answer at once so
        // the caller reads again (a change just before the mark was not announced).
        if (this.#marked.size > 10_000) this.#marked.clear();
        for (const id of fresh) this.#marked.add(id);
        await this.#store.markWatched(fresh).catch(() => undefined);
        return;
      }
    }
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", wake);
        for (const id of ids) this.#waiters.get(id)?.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, Math.min(maxMs, this.pollMs)));
      signal?.addEventListener("abort", wake, { once: true });
      for (const id of ids) {
        let set = this.#waiters.get(id);
        if (set === undefined) {
          set = new Set();
          this.#waiters.set(id, set);
        }
        set.add(wake);
      }
    });
  }

  close(): void {
    this.#unsubscribe();
    for (const set of this.#waiters.values()) for (const wake of set) wake();
    this.#waiters.clear();
  }
}
