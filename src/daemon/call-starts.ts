/**
 * Starts HTTP/2 calls a few per turn of the event loop, and none whose stream the client has
 * reset meanwhile.
 *
 * - A client can open a stream and reset it in the same breath ("rapid reset"), or drop a
 *   connection with streams queued behind it: a call starts once the frames read with it are
 *   processed, so a stream already gone costs nothing more.
 * - One read of a connection can hold a hundred new streams: started all at once, their calls
 *   would hold the event loop for that long, and every other client (a load balancer's /healthz)
 *   would wait. A few per turn let other connections' I/O in between.
 *
 * HTTP/1.1 carries one request at a time per connection: its calls start at once.
 */
import type { NodeRequest } from "./http-types.js";

/** Calls waiting for their turn, started `perTurn` at a time. */
export class CallStarts {
  readonly #perTurn: number;
  readonly #waiting: (() => void)[] = [];
  #next = 0;
  #scheduled = false;

  constructor(perTurn = 16) {
    this.#perTurn = perTurn;
  }

  start(request: NodeRequest, serve: () => void): void {
    if (!("stream" in request)) {
      serve();
      return;
    }
    const { stream } = request;
    this.#waiting.push(() => {
      if (!stream.closed && !stream.destroyed) serve();
    });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#drain);
  }

  readonly #drain = () => {
    this.#scheduled = false;
    const end = Math.min(this.#waiting.length, this.#next + this.#perTurn);
    while (this.#next < end) this.#waiting[this.#next++]!();
    if (this.#next < this.#waiting.length) {
      this.#schedule();
      return;
    }
    this.#waiting.length = 0;
    this.#next = 0;
  };
}
