/**
 * Request-body bytes the daemon holds at once, per connection and in all, so that many large or
 * never-ending bodies cannot grow its memory without limit. A request reserves its bytes before
 * they are buffered (its declared length at once; without one, each chunk as it arrives) and
 * gives them back when its response is done. A reservation that does not fit either budget is
 * refused, and the request with it: nothing is waited for, so a full budget never stalls a reader.
 */
export interface BodyBudgetLimits {
  /** Bytes held at once for the requests of one connection (an HTTP/2 session or a socket). */
  readonly perConnection: number;
  /** Bytes held at once for every request of the daemon. */
  readonly perDaemon: number;
}

/** One request's share: grows with `reserve`, given back whole by `release`. */
export interface BodyReservation {
  /** Adds `bytes` when both budgets have room, all or nothing; false when one has not. */
  reserve(bytes: number): boolean;
  /** Gives every reserved byte back; later calls do nothing. */
  release(): void;
}

interface Held {
  bytes: number;
}

export class BodyBudget {
  readonly limits: BodyBudgetLimits;
  readonly #daemon: Held = { bytes: 0 };
  /** Keyed by the connection object, so a closed connection's entry goes with it. */
  readonly #connections = new WeakMap<object, Held>();

  constructor(limits: BodyBudgetLimits) {
    this.limits = limits;
  }

  /** Bytes reserved now across the daemon. */
  get inFlight(): number {
    return this.#daemon.bytes;
  }

  /** A reservation for one request arriving on `connection`. */
  open(connection: object): BodyReservation {
    let perConnection = this.#connections.get(connection);
    if (perConnection === undefined) {
      perConnection = { bytes: 0 };
      this.#connections.set(connection, perConnection);
    }
    const connectionHeld = perConnection;
    const daemonHeld = this.#daemon;
    const { limits } = this;
    let mine = 0;
    let released = false;
    return {
      reserve: (bytes) => {
        if (released) return false;
        if (connectionHeld.bytes + bytes > limits.perConnection) return false;
        if (daemonHeld.bytes + bytes > limits.perDaemon) return false;
        connectionHeld.bytes += bytes;
        daemonHeld.bytes += bytes;
        mine += bytes;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        connectionHeld.bytes -= mine;
        daemonHeld.bytes -= mine;
        mine = 0;
      },
    };
  }
}
