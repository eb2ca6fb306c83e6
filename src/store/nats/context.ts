/**
 * What the NATS store's operations share (enqueue.ts, claim.ts, finish.ts, controls.ts, …): the
 * connection and its buckets, the record repository and the listing index, this process's identity,
 * the jobs it holds, its events and counters. Built once per store by `createContext`; the
 * operations take it as their first argument, and NatsStore (nats-store.ts) only wires them up.
 */
import { randomUUID } from "node:crypto";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { isFinished } from "../../core/job.js";
import type { LeaseThread } from "../lease-thread.js";
import { Counters } from "./counters.js";
import { NatsEvents } from "./events.js";
import { ExpiryLog } from "./expiry-log.js";
import { GroupRates } from "./group-rates.js";
import { GroupSlots } from "./group-slots.js";
import { HeldRegistry } from "./held-registry.js";
import { JobIndex } from "./job-index.js";
import { JobRepo, type Versioned } from "./job-repo.js";
import type { JsRequests } from "./js-requests.js";
import { type NatsNames, natsNames } from "./names.js";
import type { WorkMessage } from "./pull.js";

/** What the store needs from a connection (see connection.ts). */
export interface NatsResources {
  readonly nc: NatsConnection;
  /** The hot requests (writes, confirmed acks) without the client's per-request cost. */
  readonly requests: JsRequests;
  readonly jobs: KV;
  /** A thread that renews this process's leases while its event loop stalls (lease-keeper.ts). */
  startLeaseKeeper(): LeaseThread;
  /** Compare-and-set of one job record at `revision` (0: must not exist); answers the new revision. */
  writeJob(id: string, record: Uint8Array, revision: number): Promise<number>;
  readonly unique: KV;
  /** The listing index (job-index.ts). */
  readonly index: KV;
  readonly meta: KV;
  /** Makes sure the durable consumer of one (queue, band, handler) exists. */
  ensureConsumer(name: string, filterSubject: string): Promise<void>;
  /** The job a work message names, by its stream sequence (undefined when it is gone). */
  jobIdAt(sequence: number): Promise<string | undefined>;
  deleteMessage(sequence: number): Promise<void>;
  /** Messages in the work stream per subject matching `filter` (waiting or delivered, not acked). */
  messagesBySubject(filter: string): Promise<Readonly<Record<string, number>>>;
  publish(
    subject: string,
    data: Uint8Array,
    options: { msgID: string; headers: Record<string, string> },
  ): Promise<void>;
  close(): Promise<void>;
}

/** A job this process's workers hold: its dispatch (none when launched claimed) and its record as last written. */
export interface Held {
  readonly message: WorkMessage | undefined;
  known: Versioned;
}

export interface NatsContext {
  readonly r: NatsResources;
  readonly names: NatsNames;
  /** This store instance: its key in the meta bucket (held list, counters) and on the event subject. */
  readonly origin: string;
  readonly repo: JobRepo;
  readonly index: JobIndex;
  readonly expiry: ExpiryLog;
  readonly holders: HeldRegistry;
  readonly slots: GroupSlots;
  readonly rates: GroupRates;
  readonly events: NatsEvents;
  readonly counters: Counters;
  readonly held: Map<string, Held>;
  /** Jobs whose claim is being written: listed as held already (a rescuer checks the record). */
  readonly claiming: Set<string>;
  /**
   * Jobs being launched (their record written, their dispatch not yet): listed as held the same
   * way, so that if this process dies between the two writes a rescuer dispatches them.
   */
  readonly launching: Set<string>;
  /** Direct-dispatch launches whose answer was lost: listed as held until a rescue ends them. */
  readonly unheard: Set<string>;
  /** How long the keeper renews after the last heartbeat: a process stuck longer loses its jobs. */
  readonly stallMs: number;
  /** Renews leases while the event loop stalls; started by the first heartbeat (workers only). */
  keeper: LeaseThread | undefined;
  closed: boolean;
}

export function createContext(resources: NatsResources, prefix: string, leaseKeeperMs: number): NatsContext {
  const origin = randomUUID();
  const names = natsNames(prefix);
  const expiry = new ExpiryLog(resources.meta, origin);
  const repo = new JobRepo(resources.jobs, resources.writeJob, (job) => {
    if (isFinished(job.state) && job.expiresAt !== null) expiry.note(job.id, job.expiresAt);
  });
  const held = new Map<string, Held>();
  const claiming = new Set<string>();
  const launching = new Set<string>();
  const unheard = new Set<string>();
  const isClosed = () => context.closed;
  const context: NatsContext = {
    r: resources,
    names,
    origin,
    repo,
    index: new JobIndex(resources.index),
    expiry,
    holders: new HeldRegistry(resources.meta, origin, () => [
      ...held.keys(),
      ...claiming,
      ...launching,
      ...unheard,
    ]),
    slots: new GroupSlots(resources.meta, repo),
    rates: new GroupRates(resources.meta),
    events: new NatsEvents(resources.nc, names.events, origin, isClosed),
    counters: new Counters(resources.meta, origin, isClosed),
    held,
    claiming,
    launching,
    unheard,
    stallMs: leaseKeeperMs,
    keeper: undefined,
    closed: false,
  };
  return context;
}

/** Publishes what this process holds before its claims answer, so any rescuer can find them. */
export async function announceHeld(ctx: NatsContext): Promise<void> {
  // Unwritten, the jobs are still found: their dispatches come back after AckWait (see held-registry.ts).
  await ctx.holders.publish().catch(() => undefined);
}
