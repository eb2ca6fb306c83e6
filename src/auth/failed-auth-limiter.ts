/**
 * Slows down token guessing: an address that presented `maxFailures` bad tokens within
 * `windowMs` has its further bad tokens refused (429) until that window ends. It never judges a
 * good token: the caller checks the token first and asks here only about a bad one, since every
 * local process shares 127.0.0.1 and one of them must not lock the others out. Memory stays
 * bounded: past `maxAddresses` the least recently failing address is forgotten first.
 */
export interface FailedAuthLimits {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxAddresses: number;
}

export const DEFAULT_FAILED_AUTH_LIMITS: FailedAuthLimits = {
  maxFailures: 10,
  windowMs: 60_000,
  maxAddresses: 10_000,
};

interface Window {
  readonly startedAt: number;
  failures: number;
}

export class FailedAuthLimiter {
  readonly #limits: FailedAuthLimits;
  readonly #now: () => number;
  /** In order of last failure (a Map keeps insertion order): the first one is evicted first. */
  readonly #windows = new Map<string, Window>();

  constructor(limits: Partial<FailedAuthLimits> = {}, now: () => number = Date.now) {
    this.#limits = { ...DEFAULT_FAILED_AUTH_LIMITS, ...limits };
    this.#now = now;
  }

  /** How long `address` stays refused, in ms; 0 when it may try. */
  blockedForMs(address: string): number {
    const window = this.#current(address);
    if (window === undefined || window.failures < this.#limits.maxFailures) return 0;
    return window.startedAt + this.#limits.windowMs - this.#now();
  }

  recordFailure(address: string): void {
    const window = this.#current(address) ?? { startedAt: this.#now(), failures: 0 };
    window.failures += 1;
    this.#windows.delete(address);
    this.#windows.set(address, window);
    if (this.#windows.size > this.#limits.maxAddresses) {
      const oldest = this.#windows.keys().next().value;
      if (oldest !== undefined) this.#windows.delete(oldest);
    }
  }

  #current(address: string): Window | undefined {
    const window = this.#windows.get(address);
    if (window === undefined) return undefined;
    if (this.#now() - window.startedAt < this.#limits.windowMs) return window;
    this.#windows.delete(address);
    return undefined;
  }
}
