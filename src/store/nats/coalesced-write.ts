/**
 * One write at a time, shared by everyone who asks while it waits: callers that come while a
 * write is out share the next one, which reads its value only when it starts. A burst of N callers
 * costs two writes, not N, and each caller's own change is in the write it waits for.
 */
export class CoalescedWrite {
  #current: Promise<unknown> = Promise.resolve();
  #next: Promise<void> | undefined;

  constructor(private readonly write: () => Promise<unknown>) {}

  run(): Promise<void> {
    if (this.#next === undefined) {
      const next = this.#current.then(async () => {
        this.#next = undefined;
        await this.write();
      });
      this.#next = next;
      this.#current = next.catch(() => undefined);
    }
    return this.#next;
  }

  /** Settles when every write asked for so far has ended (errors are the askers'). */
  idle(): Promise<unknown> {
    return this.#next ?? this.#current;
  }
}
