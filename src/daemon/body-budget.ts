/**
 * Request-body bytes the daemon holds at once, per connection, per user and in all, so that many
 * large or never-ending bodies cannot grow its memory without limit, and one user cannot take the
 * room everyone shares. A request reserves bytes as they arrive, chunk by chunk, never ahead of
 * them: a client that declares a length and sends nothing holds nothing (a declared length that
 * does not fit the room left now is refused at once, `fits`, but reserves nothing). Bytes are given
 * back when the response is done. A reservation that does not fit is refused, and the request with
 * it: nothing is waited for, so a full budget never stalls a reader.
 */
export interface BodyBudgetLimits {
  /** Bytes held at once for the requests of one connection (an HTTP/2 session or a socket). */
  readonly perConnection: number;
  /** Bytes held at once for the requests of one user, over all their connections. */
  readonly perUser: number;
  /** Bytes held at once for every request of the daemon. */
  readonly perDaemon: number;
}

/** One request's share: grows with `reserve`, given back whole by `release`. */
export interface BodyReservation {
  /** Whether `bytes` more would fit every budget now; reserves nothing. */
  fits(bytes: number): boolean;
  /** Adds `bytes` when every budget has room, all or nothing; false when one has not. */
  reserve(bytes: number): boolean;
  /** Gives every reserved byte back; later calls do nothing. */
  release(): void;
}

interface Held {
  bytes: number;
}

/** For a request with no user (authentication off): its connection and the daemon bound it. */
const NO_USER_LIMIT: Held = { bytes: 0 };

export class BodyBudget {
  readonly limits: BodyBudgetLimits;
  readonly #daemon: Held = { bytes: 0 };
  /** Keyed by the connection object, so a closed connection's entry goes with it. */
  readonly #connections = new WeakMap<object, Held>();
  /** Only users holding bytes now are kept. */
  readonly #users = new Map<string, Held>();

  constructor(limits: BodyBudgetLimits) {
    this.limits = limits;
  }

  /** Bytes reserved now across the daemon. */
  get inFlight(): number {
    return this.#daemon.bytes;
  }

  /** A reservation for one request arriving on `connection` from `user` (none: not counted). */
  open(connection: object, user?: string): BodyReservation {
    let connectionHeld = this.#connections.get(connection);
    if (connectionHeld === undefined) {
      connectionHeld = { bytes: 0 };
      this.#connections.set(connection, connectionHeld);
    }
    const perConnection = connectionHeld;
    const users = this.#users;
    const daemonHeld = this.#daemon;
    const { limits } = this;
    const userLimit = user === undefined ? Number.POSITIVE_INFINITY : limits.perUser;
    const userHeld = () => (user === undefined ? NO_USER_LIMIT : (users.get(user) ?? { bytes: 0 }));
    let mine = 0;
    let released = false;
    const fits = (bytes: number) =>
      !released &&
      perConnection.bytes + bytes <= limits.perConnection &&
      userHeld().bytes + bytes <= userLimit &&
      daemonHeld.bytes + bytes <= limits.perDaemon;
    return {
      fits,
      reserve: (bytes) => {
        if (!fits(bytes)) return false;
        if (user !== undefined) {
          const held = userHeld();
          held.bytes += bytes;
          users.set(user, held);
        }
        perConnection.bytes += bytes;
        daemonHeld.bytes += bytes;
        mine += bytes;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        if (user !== undefined && mine > 0) {
          const held = userHeld();
          held.bytes -= mine;
          if (held.bytes <= 0) users.delete(user);
        }
        perConnection.bytes -= mine;
        daemonHeld.bytes -= mine;
        mine = 0;
      },
    };
  }
}
