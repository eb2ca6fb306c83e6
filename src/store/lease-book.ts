/**
 * The thread side of a store's lease-keeping thread (the main side is lease-thread.ts): the
 * protocol, the leases held per worker, and the loop of the stores that keep leases only
 * (PostgreSQL, NATS). A thread renews a worker's leases only once its heartbeat is clearly late
 * (the healthy main thread renews every third of a lease), and for at most `until`: a process
 * stuck longer loses its jobs to the rescuer, as a dead one does.
 */
import { parentPort, workerData } from "node:worker_threads";

/** A lease as the thread holds it: the job's id and its fence. */
export type LeasePair = readonly [id: string, fence: number];

/** What the main thread says to a lease-keeping thread. */
export type LeaseMessage =
  | {
      readonly type: "leases";
      /** Join the worker's set (a claim) instead of replacing it (a heartbeat). */
      readonly add: boolean;
      readonly forget: false;
      readonly worker: string;
      readonly leases: LeasePair[];
      readonly leaseMs: number;
      /** Renew nothing after this (epoch ms). */
      readonly until: number;
    }
  | { readonly type: "leases"; readonly forget: true; readonly worker: string }
  | { readonly type: "stop" };

/** One worker's leases, as the last heartbeat handed them over. */
export interface HeldLeases {
  readonly leases: LeasePair[];
  readonly leaseMs: number;
  until: number;
  renewedAt: number;
}

/** The leases a thread keeps, per worker id. */
export class LeaseBook {
  readonly #held = new Map<string, HeldLeases>();

  /** Applies a `leases` message. */
  apply(message: Extract<LeaseMessage, { type: "leases" }>): void {
    if (message.forget) {
      this.#held.delete(message.worker);
      return;
    }
    const entry = this.#held.get(message.worker);
    if (message.add) {
      // Newly claimed jobs of a worker that heartbeats: kept from the claim on. Claims by anything
      // that never heartbeated (a bare Store user) are left to expire as the contract says.
      if (entry !== undefined) {
        entry.leases.push(...message.leases);
        entry.until = message.until;
      }
    } else {
      this.#held.set(message.worker, {
        leases: message.leases,
        leaseMs: message.leaseMs,
        until: message.until,
        renewedAt: Date.now(),
      });
    }
  }

  /**
   * The sets whose heartbeat is clearly late at `now`, read from the live map (so a heartbeat that
   * lands while the caller awaits a renewal is seen); sets past their `until` are dropped.
   */
  *late(now: number): Generator<HeldLeases> {
    for (const [worker, entry] of this.#held) {
      if (now > entry.until) {
        this.#held.delete(worker);
        continue;
      }
      if (now - entry.renewedAt < entry.leaseMs / 2) continue;
      yield entry;
    }
  }
}

/** The thread's port: a module run as a thread has one. */
export function threadPort(): NonNullable<typeof parentPort> {
  if (parentPort === null) throw new Error("a lease-keeping thread's module must run as a thread");
  return parentPort;
}

/** A lease-only store's part of its thread. */
export interface LeaseRenewer {
  /** True when every lease of `entry.leases` was renewed for `entry.leaseMs`; a failure is tried again at the next tick. */
  renewLeases(entry: HeldLeases): Promise<boolean>;
  closeStore(): Promise<void>;
}

/** What every lease-only thread gets as workerData, besides its store's own settings. */
export interface LeaseKeeperData {
  readonly tickMs: number;
  /** The main thread's beat (lease-thread.ts), when it sends one. */
  readonly loopBeat?: SharedArrayBuffer | undefined;
}

/**
 * Runs a lease-only store's thread: the tick that renews a worker's leases once its heartbeat is
 * clearly late and, with a loop beat, only while the event loop is stalled; the message protocol.
 */
export function runLeaseKeeper(store: LeaseRenewer): void {
  const port = threadPort();
  const data = workerData as LeaseKeeperData;
  const book = new LeaseBook();
  const loopBeat = data.loopBeat === undefined ? undefined : new Float64Array(data.loopBeat);
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const now = Date.now();
      for (const entry of book.late(now)) {
        if (entry.leases.length === 0) continue;
        // A loop that still turns will send the heartbeat itself.
        if (loopBeat !== undefined && now - (loopBeat[0] ?? 0) < entry.leaseMs / 3) continue;
        if (await store.renewLeases(entry).catch(() => false)) entry.renewedAt = now;
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), data.tickMs);
  port.on("message", (message: LeaseMessage) => {
    if (message.type === "leases") book.apply(message);
    else if (message.type === "stop") {
      clearInterval(timer);
      const done = () => port.close();
      store.closeStore().then(done, done);
    }
  });
}
