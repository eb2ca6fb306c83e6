/**
 * Per-user launch quotas, checked before anything is stored:
 *
 * - `launchesPerMinute`: launches in a one-minute window that opens with the user's first launch
 *   (a fixed window: exact within it; across a window's edge a user may get up to twice the rate
 *   for a moment).
 * - `maxActive`: the user's unfinished jobs (scheduled, queued, running), as the store counts them
 *   plus the launches this daemon admitted since that count.
 *
 * Admission is synchronous once the count is known, so a burst of parallel launches at the edge of
 * a quota admits exactly the allowed number (JavaScript runs one check at a time). The store's count
 * is re-read when it is older than `refreshMs`, and before a refusal for `maxActive` unless it is
 * fresh (100 ms, and no job changed in this process since) and knows every stored launch, so jobs
 * that finished meanwhile are not held against the user. Launches admitted while a count is
 * being read are counted on top of it, so the quota errs towards refusing, never towards
 * admitting too many. Quotas are per daemon: daemons sharing a store each apply them.
 */
import { ErrorCode, FerryError } from "../core/errors.js";

export interface QuotaLimits {
  readonly launchesPerMinute: number;
  readonly maxActive: number;
}

/** An admitted launch: `stored()` once the jobs exist, `refund()` when nothing was stored. */
export interface Admission {
  stored(): void;
  refund(): void;
}

const WINDOW_MS = 60_000;
/** A store count older than this is read again before the next admission. */
const DEFAULT_REFRESH_MS = 1_000;
/** A refusal for maxActive waits for a count at most this old. */
const FRESH_FOR_REFUSAL_MS = 100;
/** A count is read again no sooner than this after the last, however busy the daemon. */
const MIN_REREAD_MS = 10;
/** Users remembered at once; past it, the least recently launching are forgotten. */
const MAX_USERS = 10_000;

interface UserQuota {
  windowStart: number;
  launchedInWindow: number;
  /** The store's last count of unfinished jobs, and when that read began. */
  activeCount: number;
  countedAt: number;
  /** `#changes` when that read began. */
  changesAtCount: number;
  /** Admissions that count may not include. */
  admittedSinceCount: number;
  /** Launches admitted but not yet stored or refunded. */
  inFlight: number;
  reading: Promise<void> | undefined;
  /** Admissions made since the read in progress began (it may miss them). */
  admittedSinceRead: number;
}

export class LaunchQuotas {
  readonly #limits: QuotaLimits;
  readonly #countActive: (owner: string, limit: number) => Promise<number>;
  readonly #now: () => number;
  readonly #refreshMs: number;
  readonly #users = new Map<string, UserQuota>();
  /** Job changes seen (see `noteJobChanged`). */
  #changes = 0;

  constructor(
    limits: QuotaLimits,
    countActive: (owner: string, limit: number) => Promise<number>,
    options: { readonly now?: () => number; readonly refreshMs?: number } = {},
  ) {
    this.#limits = limits;
    this.#countActive = countActive;
    this.#now = options.now ?? Date.now;
    this.#refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
  }

  /**
   * A job changed (this process's store events): a count taken before may hold a job that has
   * finished since, so a refusal reads again rather than trust it.
   */
  noteJobChanged(): void {
    this.#changes++;
  }

  /** Admits `n` launches by `user`, all or none; throws FERRY_QUOTA_EXCEEDED when they don't fit. */
  async admit(user: string, n: number): Promise<Admission> {
    const { launchesPerMinute, maxActive } = this.#limits;
    if (n > launchesPerMinute || n > maxActive) {
      throw new FerryError(
        ErrorCode.QuotaExceeded,
        `${n} jobs at once is more than ${user}'s quotas ever allow (${launchesPerMinute} a minute, ${maxActive} unfinished)`,
      );
    }
    const quota = this.#quota(user);
    // The rate first: a launch it refuses costs no store read.
    this.#checkRate(user, quota, n);
    if (this.#now() - quota.countedAt > this.#refreshMs) await this.#read(user, quota);
    if (quota.activeCount + quota.admittedSinceCount + n > maxActive && this.#mayBeStale(quota)) {
      await this.#read(user, quota);
    }
    // From here on no await: the check and the reservation are one step.
    this.#checkRate(user, quota, n);
    if (quota.activeCount + quota.admittedSinceCount + n > maxActive) {
      throw new FerryError(
        ErrorCode.QuotaExceeded,
        `${user} may have ${maxActive} unfinished jobs: wait for some to finish`,
      );
    }
    quota.launchedInWindow += n;
    quota.admittedSinceCount += n;
    quota.admittedSinceRead += n;
    quota.inFlight += n;
    const windowStart = quota.windowStart;
    let settled = false;
    return {
      stored: () => {
        if (settled) return;
        settled = true;
        quota.inFlight -= n;
      },
      refund: () => {
        if (settled) return;
        settled = true;
        quota.inFlight -= n;
        if (quota.windowStart === windowStart) quota.launchedInWindow -= n;
        quota.admittedSinceCount = Math.max(0, quota.admittedSinceCount - n);
        quota.admittedSinceRead = Math.max(0, quota.admittedSinceRead - n);
      },
    };
  }

  /** Refuses `n` more launches in the user's current one-minute window when they don't fit. */
  #checkRate(user: string, quota: UserQuota, n: number): void {
    const now = this.#now();
    if (now - quota.windowStart >= WINDOW_MS) {
      quota.windowStart = now;
      quota.launchedInWindow = 0;
    }
    if (quota.launchedInWindow + n > this.#limits.launchesPerMinute) {
      const wait = Math.ceil((quota.windowStart + WINDOW_MS - now) / 1000);
      throw new FerryError(
        ErrorCode.QuotaExceeded,
        `${user} may launch ${this.#limits.launchesPerMinute} jobs a minute: try again in ${wait} s`,
      );
    }
  }

  /**
   * Whether a count that refuses may be wrong: it is older than 100 ms, or launches were stored
   * since it (they may have finished), or a job changed since it and it is over `MIN_REREAD_MS`
   * old (so a user at its limit costs at most a read per `MIN_REREAD_MS` on a busy daemon).
   */
  #mayBeStale(quota: UserQuota): boolean {
    const age = this.#now() - quota.countedAt;
    if (age > FRESH_FOR_REFUSAL_MS || quota.admittedSinceCount > quota.inFlight) return true;
    return quota.changesAtCount !== this.#changes && age >= MIN_REREAD_MS;
  }

  #quota(user: string): UserQuota {
    let quota = this.#users.get(user);
    if (quota === undefined) {
      quota = {
        windowStart: this.#now(),
        launchedInWindow: 0,
        activeCount: 0,
        countedAt: Number.NEGATIVE_INFINITY,
        changesAtCount: -1,
        admittedSinceCount: 0,
        inFlight: 0,
        reading: undefined,
        admittedSinceRead: 0,
      };
    } else {
      this.#users.delete(user);
    }
    this.#users.set(user, quota);
    if (this.#users.size > MAX_USERS) {
      // The least recently launching user whose launches are all settled.
      for (const [name, old] of this.#users) {
        if (old.inFlight === 0 && old.reading === undefined && name !== user) {
          this.#users.delete(name);
          break;
        }
      }
    }
    return quota;
  }

  /** Reads the store's count; concurrent callers share one read. */
  #read(user: string, quota: UserQuota): Promise<void> {
    quota.reading ??= (async () => {
      const startedAt = this.#now();
      const changes = this.#changes;
      // Launches in flight now may or may not be in the count: they stay counted on top of it.
      quota.admittedSinceRead = quota.inFlight;
      try {
        const count = await this.#countActive(user, this.#limits.maxActive + 1);
        quota.activeCount = count;
        quota.admittedSinceCount = quota.admittedSinceRead;
        quota.countedAt = startedAt;
        quota.changesAtCount = changes;
      } finally {
        quota.reading = undefined;
      }
    })();
    return quota.reading;
  }
}
