/**
 * The daemon's view of the access document: who a token belongs to, answered from memory, and
 * changes written to the store by compare-and-set.
 *
 * A change made here applies to this daemon's next call at once. Daemons sharing the store read
 * the document's revision every `refreshMs` and apply what changed. When a token is revoked, or its
 * user's role or grants change, the sessions (open streams, long waits) it holds are aborted, so
 * revocation ends them within `refreshMs` plus a round trip on every daemon.
 */
import { ErrorCode, FerryError } from "../core/errors.js";
import type { Store } from "../store/store.js";

/** The part of a store that keeps the access document: all access control reads and writes. */
export type AccessStore = Pick<Store, "readAccess" | "writeAccess">;

import { type AccessData, decodeAccess, EMPTY_ACCESS, encodeAccess, type Role, topRole } from "./access.js";
import { parseToken, secretMatches } from "./tokens.js";

export interface Principal {
  readonly user: string;
  readonly role: Role;
  /** Restricted handlers this user may launch. */
  readonly grants: ReadonlySet<string>;
  readonly tokenId: string;
}

/** A long call's link to its token: `signal` aborts when the token stops being valid. */
export interface Session {
  readonly signal: AbortSignal;
  release(): void;
}

interface TokenIndexEntry {
  readonly principal: Principal;
  readonly hash: string;
}

/** Compare-and-set attempts before a change gives up (each loss means another writer won). */
const MAX_WRITE_ATTEMPTS = 20;
export const DEFAULT_REFRESH_MS = 250;

export class AccessControl {
  readonly #store: AccessStore;
  #data: AccessData = EMPTY_ACCESS;
  #revision = 0;
  #tokens = new Map<string, TokenIndexEntry>();
  readonly #sessions = new Map<string, Set<AbortController>>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  /** The last change queued, settled and never rejected: the next change waits for it. */
  #changes: Promise<unknown> = Promise.resolve();

  private constructor(store: AccessStore) {
    this.#store = store;
  }

  /** Loads the document and keeps it fresh every `refreshMs` until `close`. */
  static async open(
    store: AccessStore,
    options: { readonly refreshMs?: number } = {},
  ): Promise<AccessControl> {
    const access = new AccessControl(store);
    await access.refresh();
    access.#timer = setInterval(() => {
      // A failed read keeps the last document; the next tick tries again.
      access.refresh().catch(() => undefined);
    }, options.refreshMs ?? DEFAULT_REFRESH_MS);
    access.#timer.unref();
    return access;
  }

  get data(): AccessData {
    return this.#data;
  }

  /** The principal a token stands for, or undefined for a token that is malformed, unknown or revoked. */
  authenticate(token: string): Principal | undefined {
    const parsed = parseToken(token);
    if (parsed === undefined) return undefined;
    const entry = this.#tokens.get(parsed.id);
    // Hash and compare even for an unknown id, so both answers take the same time.
    const matches = secretMatches(parsed.secret, entry?.hash ?? UNKNOWN_HASH);
    return entry !== undefined && matches ? entry.principal : undefined;
  }

  /** Ties a long call to the principal's token: the signal aborts when that token is revoked. */
  hold(principal: Principal): Session {
    const controller = new AbortController();
    let set = this.#sessions.get(principal.tokenId);
    if (set === undefined) {
      set = new Set();
      this.#sessions.set(principal.tokenId, set);
    }
    set.add(controller);
    if (this.#tokens.get(principal.tokenId)?.principal !== principal) abort(controller);
    return {
      signal: controller.signal,
      release: () => {
        set.delete(controller);
        if (set.size === 0 && this.#sessions.get(principal.tokenId) === set)
          this.#sessions.delete(principal.tokenId);
      },
    };
  }

  /**
   * Applies `change` to the newest document and writes it by compare-and-set, again on the newer
   * one when another writer came first. `change` must be pure: it may run more than once.
   */
  change<T>(change: (data: AccessData) => { readonly data: AccessData; readonly answer: T }): Promise<T> {
    // One change at a time per AccessControl: concurrent changes here would otherwise race each
    // other for every revision (the n-th of n concurrent changes took n attempts, and past
    // MAX_WRITE_ATTEMPTS of them some failed). The attempts are left for other daemons' writes.
    const turn = this.#changes.then(() => this.write(change));
    this.#changes = turn.catch(() => undefined);
    return turn;
  }

  private async write<T>(
    change: (data: AccessData) => { readonly data: AccessData; readonly answer: T },
  ): Promise<T> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      await this.refresh();
      const { data, answer } = change(this.#data);
      const revision = await this.#store.writeAccess(encodeAccess(data), this.#revision);
      if (revision !== null) {
        this.install(data, revision);
        return answer;
      }
    }
    throw new FerryError(
      ErrorCode.StoreUnavailable,
      "the access document kept changing under this write: try again",
    );
  }

  /** Reads the document again, and applies it if it moved on. */
  async refresh(): Promise<void> {
    // One read at a time: a tick and a change share it.
    this.#refreshing ??= (async () => {
      try {
        const stored = await this.#store.readAccess();
        const revision = stored?.revision ?? 0;
        if (revision !== this.#revision) this.install(decodeAccess(stored?.data), revision);
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  close(): void {
    clearInterval(this.#timer);
    for (const set of this.#sessions.values()) for (const controller of set) abort(controller);
    this.#sessions.clear();
  }

  private install(data: AccessData, revision: number): void {
    if (revision < this.#revision) return;
    const previous = this.#tokens;
    const tokens = new Map<string, TokenIndexEntry>();
    for (const user of data.users) {
      const role = topRole(user);
      if (role === undefined) continue;
      for (const token of user.tokens) {
        const before = previous.get(token.id)?.principal;
        const grants = new Set(user.grants);
        // Keep the same object while nothing changed: sessions compare principals by identity.
        const principal =
          before !== undefined && before.role === role && sameSet(before.grants, grants)
            ? before
            : { user: user.name, role, grants, tokenId: token.id };
        tokens.set(token.id, { principal, hash: token.hash });
      }
    }
    this.#data = data;
    this.#revision = revision;
    this.#tokens = tokens;
    for (const [tokenId, set] of this.#sessions) {
      if (tokens.get(tokenId)?.principal === previous.get(tokenId)?.principal) continue;
      for (const controller of set) abort(controller);
      this.#sessions.delete(tokenId);
    }
  }
}

/** Compared against when a token's id is unknown (a hash no secret has). */
const UNKNOWN_HASH = Buffer.alloc(32).toString("base64url");

function abort(controller: AbortController): void {
  controller.abort(new FerryError(ErrorCode.Unauthenticated, "the token was revoked or its rights changed"));
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((value) => b.has(value));
}
