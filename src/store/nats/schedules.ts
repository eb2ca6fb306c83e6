/**
 * Schedules of the NATS store, in the `P_meta` bucket (docs/stores.md, "Schedules"):
 *
 * - `schedule.<id>` → the record as JSON (payload base64);
 * - `schedname.<sha256(name) hex>` → id, created only if absent, so two upserts of one name make
 *   one schedule.
 *
 * NATS has no multi-key transaction, so every write is a compare-and-set on one key, and a lost
 * race re-reads and decides again. Firing a tick is two-phase on the schedule's record:
 *
 * 1. CAS the record from its tick to the next one, with the fired job parked in `pending`: one
 *    process wins each tick;
 * 2. the winner enqueues the job, then CASes `pending` back to null.
 *
 * A winner that dies between the phases leaves `pending` behind. Once `pendingGraceMs` has passed,
 * any process claims it (CAS again: one claimant), enqueues the same job (same id) and clears it. A
 * schedule does not fire again while a job is pending, so a tick is neither lost nor doubled.
 *
 * The `enqueue` given must be idempotent by job id (a second call for a stored id resolves): a
 * winner may die after enqueueing but before clearing `pending`, or outlast the grace.
 * `enqueueOnce` adapts a Store's enqueue. (The job id is the fired job's own, kept in `pending`,
 * rather than one derived from schedule and tick: the same dedupe, without a second id scheme.)
 */
import { createHash, randomUUID } from "node:crypto";
import { Bucket, type KV } from "@nats-io/kv";
import { invalidArgument } from "../../core/errors.js";
import type {
  NewJob,
  ScheduleFiring,
  ScheduleInput,
  ScheduleJobFiring,
  SchedulePatch,
  ScheduleRecord,
  Store,
} from "../store.js";
import { isRevisionConflict } from "./job-repo.js";
import { listKeys } from "./kv-keys.js";

export type Enqueue = (job: NewJob) => Promise<void>;
export type Fire = (schedule: ScheduleRecord, now: number) => ScheduleFiring;

export interface NatsSchedulesOptions {
  /**
   * How long another process's pending job is left to its winner before this one takes it over.
   * Must exceed any enqueue's duration plus the clock skew between machines.
   */
  readonly pendingGraceMs?: number;
}

/** The default grace: the default lease, which the clock-skew bound is already stated against. */
export const PENDING_GRACE_MS = 30_000;

/** Retries of one read-modify-write before giving up (each lost race means another writer won). */
const MAX_RACES = 50;
/** Records read at once when scanning. */
const READ_BATCH = 64;

/** A NewJob as JSON: bytes as base64. */
interface WireJob extends Omit<NewJob, "payload" | "cookieHash"> {
  readonly payload: string;
  readonly cookieHash: string | null;
}

/** A fired job not yet known to be enqueued, and who is enqueueing it since when. */
interface Pending {
  readonly job: WireJob;
  readonly by: string;
  readonly at: number;
}

interface StoredSchedule extends Omit<ScheduleRecord, "payload" | "pausedReason"> {
  readonly payload: string;
  /** Absent in records written before pause reasons existed. */
  readonly pausedReason?: string | null;
  readonly pending: Pending | null;
  /** A tombstone: deleted, but its index entry or pending job is not dealt with yet. */
  readonly deleted: boolean;
}

interface Found {
  readonly stored: StoredSchedule;
  readonly revision: number;
}

const scheduleKey = (id: string): string => `schedule.${id}`;
/** Names may hold characters a KV key may not: key the index by the name's hash. */
const nameKey = (name: string): string => `schedname.${createHash("sha256").update(name).digest("hex")}`;
/** Ids become key tokens; anything else (dots, wildcards) can't name a schedule. */
const isKeyToken = (id: string): boolean => /^[A-Za-z0-9_-]{1,128}$/.test(id);

const toBase64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));

const jobToWire = (job: NewJob): WireJob => ({
  ...job,
  payload: toBase64(job.payload),
  cookieHash: job.cookieHash === null ? null : toBase64(job.cookieHash),
});

const jobFromWire = (job: WireJob): NewJob => ({
  ...job,
  payload: fromBase64(job.payload),
  cookieHash: job.cookieHash === null ? null : fromBase64(job.cookieHash),
});

/** Field by field, so the bookkeeping (pending, deleted) never leaks out. */
const toRecord = (s: StoredSchedule): ScheduleRecord => ({
  id: s.id,
  name: s.name,
  handler: s.handler,
  spec: s.spec,
  repeatLeft: s.repeatLeft,
  payload: fromBase64(s.payload),
  serializer: s.serializer,
  options: s.options,
  owner: s.owner,
  paused: s.paused,
  pausedReason: s.pausedReason ?? null,
  nextRunAt: s.nextRunAt,
  lastFiredAt: s.lastFiredAt,
  createdAt: s.createdAt,
});

/** What an upsert sets; id, createdAt and lastFiredAt are kept when it replaces (as in SQLite). */
const inputFields = (input: ScheduleInput) => ({
  handler: input.handler,
  spec: input.spec,
  repeatLeft: input.repeatLeft,
  payload: toBase64(input.payload),
  serializer: input.serializer,
  options: input.options,
  owner: input.owner,
  paused: input.paused,
  pausedReason: null,
  nextRunAt: input.nextRunAt,
});

const applyPatch = (s: StoredSchedule, patch: SchedulePatch): StoredSchedule => ({
  ...s,
  ...(patch.spec !== undefined && { spec: patch.spec }),
  ...(patch.repeatLeft !== undefined && { repeatLeft: patch.repeatLeft }),
  ...(patch.nextRunAt !== undefined && { nextRunAt: patch.nextRunAt }),
  ...(patch.paused !== undefined && { paused: patch.paused }),
  ...(patch.pausedReason !== undefined && { pausedReason: patch.pausedReason }),
});

const isDue = (s: StoredSchedule, now: number): boolean =>
  !s.deleted && !s.paused && s.nextRunAt !== null && s.nextRunAt <= now;

/** A tick is identified by the plan it was read at: once it fired, nextRunAt and lastFiredAt move. */
type Tick = Pick<StoredSchedule, "nextRunAt" | "lastFiredAt">;
const sameTick = (a: Tick, b: Tick): boolean =>
  a.nextRunAt === b.nextRunAt && a.lastFiredAt === b.lastFiredAt;

/** Byte order, as SQLite's `ORDER BY name` (names are ASCII). */
const byName = (a: ScheduleRecord, b: ScheduleRecord): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

const tooManyWriters = (what: string): Error => new Error(`${what}: too many concurrent writers`);

/**
 * Adapts a store's enqueue into the idempotent one NatsSchedules needs: a refusal for a job whose id
 * is stored means the job is there. (A pending job whose first enqueue ran, then was finished and
 * pruned before the pending was cleared, would run again: that needs a crash, then a prune.)
 */
export function enqueueOnce(store: Pick<Store, "enqueue" | "getJob">): Enqueue {
  return async (job) => {
    try {
      await store.enqueue([job]);
    } catch (error) {
      if ((await store.getJob(job.id)) === undefined) throw error;
    }
  };
}

export class NatsSchedules {
  /** Marks this instance's pending jobs, so it can retry its own at once after a failed enqueue. */
  readonly #token = randomUUID();
  /** Jobs this instance is enqueueing right now: their pending is not abandoned. */
  readonly #inFlight = new Set<string>();
  readonly #graceMs: number;
  private readonly meta: Bucket;

  constructor(
    meta: KV,
    private readonly enqueue: Enqueue,
    options: NatsSchedulesOptions = {},
  ) {
    // Listing needs the bucket's stream (see scheduleKeys): the client's own KV, not a wrapper.
    if (!(meta instanceof Bucket)) throw new TypeError("NatsSchedules needs a KV bucket from Kvm");
    this.meta = meta;
    this.#graceMs = options.pendingGraceMs ?? PENDING_GRACE_MS;
  }

  // --- reading ---------------------------------------------------------------------------------

  async get(id: string): Promise<ScheduleRecord | undefined> {
    const found = isKeyToken(id) ? await this.read(id) : undefined;
    return found === undefined || found.stored.deleted ? undefined : toRecord(found.stored);
  }

  async list(): Promise<ScheduleRecord[]> {
    const all = await this.readAll();
    return all
      .filter((f) => !f.stored.deleted)
      .map((f) => toRecord(f.stored))
      .sort(byName);
  }

  // --- writing ---------------------------------------------------------------------------------

  /** Creates, or replaces the schedule holding `input.name` (keeping its id and createdAt). */
  async upsert(input: ScheduleInput, now: number): Promise<ScheduleRecord> {
    if (!isKeyToken(input.id)) throw invalidArgument(`schedule id ${JSON.stringify(input.id)} is not valid`);
    const key = nameKey(input.name);
    for (let race = 0; race < MAX_RACES; race++) {
      const owner = await this.nameOwner(key);
      if (owner === undefined) {
        // The name is ours: create the record at once (a lost create loops, as any lost race).
        const created = (await this.tryCreate(key, input.id))
          ? await this.adopt(input.id, input, now)
          : undefined;
        if (created !== undefined) return toRecord(created);
        continue;
      }
      const found = await this.read(owner.id);
      if (found?.stored.deleted) {
        await this.takeName(key, owner.revision, input.id, found);
        continue;
      }
      const written =
        found === undefined ? await this.adopt(owner.id, input, now) : await this.replace(found, input);
      if (written !== undefined) return toRecord(written);
    }
    throw tooManyWriters(`schedule ${input.name}`);
  }

  async update(id: string, patch: SchedulePatch): Promise<ScheduleRecord | undefined> {
    if (!isKeyToken(id)) return undefined;
    for (let race = 0; race < MAX_RACES; race++) {
      const found = await this.read(id);
      if (found === undefined || found.stored.deleted) return undefined;
      const next = applyPatch(found.stored, patch);
      if ((await this.cas(next, found.revision)) !== undefined) return toRecord(next);
    }
    throw tooManyWriters(`schedule ${id}`);
  }

  /**
   * Tombstones the record, then drops its name and the record. A pending job stays on the
   * tombstone until enqueued: the tick fired before the delete, as it would have in SQLite.
   */
  async delete(id: string): Promise<boolean> {
    if (!isKeyToken(id)) return false;
    for (let race = 0; race < MAX_RACES; race++) {
      const found = await this.read(id);
      if (found === undefined) return false;
      if (found.stored.deleted) {
        await this.finishDelete(found);
        return false;
      }
      const tombstone: StoredSchedule = { ...found.stored, deleted: true };
      const revision = await this.cas(tombstone, found.revision);
      if (revision === undefined) continue;
      await this.finishDelete({ stored: tombstone, revision });
      return true;
    }
    throw tooManyWriters(`schedule ${id}`);
  }

  // --- firing ----------------------------------------------------------------------------------

  /**
   * Fires each due, unpaused schedule (one process wins each tick) and completes abandoned pending
   * jobs. Answers how many jobs this call enqueued. One schedule's failure doesn't stop the others;
   * the first error is thrown at the end (its tick stays pending, retried by the next call).
   */
  async fireDue(fire: Fire, now: number): Promise<number> {
    const candidates = (await this.readAll()).filter(
      (f) => f.stored.pending !== null || f.stored.deleted || isDue(f.stored, now),
    );
    let enqueued = 0;
    const errors: unknown[] = [];
    for (const found of candidates) {
      try {
        enqueued += await this.fireOne(found, fire, now);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
    return enqueued;
  }

  /** Decides from the record until nothing is left to do; fires at most the first tick it saw. */
  private async fireOne(first: Found, fire: Fire, now: number): Promise<number> {
    let current: Found | undefined = first;
    let tick: Tick | undefined;
    let enqueued = 0;
    for (let race = 0; race < MAX_RACES && current !== undefined; race++) {
      const { stored, revision } = current;
      if (stored.pending !== null) {
        if (!this.mayComplete(stored.pending, now)) return enqueued;
        const claimed = { ...stored, pending: { ...stored.pending, by: this.#token, at: now } };
        if (await this.claimAndEnqueue(claimed, revision, jobFromWire(stored.pending.job))) enqueued += 1;
      } else if (stored.deleted) {
        // A delete that died half-way: finish it for its process.
        await this.finishDelete(current);
        return enqueued;
      } else {
        tick ??= stored;
        if (!isDue(stored, now) || !sameTick(tick, stored)) return enqueued;
        const firing = fire(toRecord(stored), now);
        if ("pause" in firing) {
          // Held back: paused on the same tick, or decided again on the newer record.
          const held: StoredSchedule = { ...stored, paused: true, pausedReason: firing.pause };
          if ((await this.cas(held, revision)) !== undefined) return enqueued;
        } else if (await this.claimAndEnqueue(this.advance(stored, firing, now), revision, firing.job)) {
          return enqueued + 1;
        }
      }
      current = await this.read(stored.id);
    }
    if (current === undefined) return enqueued;
    throw tooManyWriters(`schedule ${first.stored.id}`);
  }

  /** Ours and not in flight (a failed enqueue), or someone else's left past the grace. */
  private mayComplete(pending: Pending, now: number): boolean {
    if (this.#inFlight.has(pending.job.id)) return false;
    return pending.by === this.#token || pending.at + this.#graceMs <= now;
  }

  /** Phase 1's record: the next tick, with the fired job parked in `pending`. */
  private advance(stored: StoredSchedule, firing: ScheduleJobFiring, now: number): StoredSchedule {
    return {
      ...stored,
      nextRunAt: firing.nextRunAt,
      lastFiredAt: now,
      repeatLeft: stored.repeatLeft === null ? null : stored.repeatLeft - 1,
      pending: { job: jobToWire(firing.job), by: this.#token, at: now },
    };
  }

  /**
   * Writes `next` (which holds `job` as pending) at `revision`; if that wins, enqueues the job and
   * clears the pending. False when another writer got there first. The job counts as in flight
   * from before the write, so a concurrent call of this instance never takes it for abandoned.
   */
  private async claimAndEnqueue(next: StoredSchedule, revision: number, job: NewJob): Promise<boolean> {
    this.#inFlight.add(job.id);
    try {
      const written = await this.cas(next, revision);
      if (written === undefined) return false;
      await this.enqueue(job);
      await this.clearPending({ stored: next, revision: written }, job.id);
      return true;
    } finally {
      this.#inFlight.delete(job.id);
    }
  }

  /** Phase 2's end. Someone else may have cleared it already (a takeover), or deleted the schedule. */
  private async clearPending(written: Found, jobId: string): Promise<void> {
    let current: Found | undefined = written;
    for (let race = 0; race < MAX_RACES; race++) {
      if (current === undefined || current.stored.pending?.job.id !== jobId) return;
      const cleared: StoredSchedule = { ...current.stored, pending: null };
      const revision = await this.cas(cleared, current.revision);
      if (revision !== undefined) {
        if (cleared.deleted) await this.finishDelete({ stored: cleared, revision });
        return;
      }
      current = await this.read(written.stored.id);
    }
    throw tooManyWriters(`schedule ${written.stored.id}`);
  }

  // --- names and deletes -----------------------------------------------------------------------

  private async nameOwner(key: string): Promise<{ id: string; revision: number } | undefined> {
    const entry = await this.meta.get(key);
    if (entry === null || entry.operation !== "PUT") return undefined;
    return { id: entry.string(), revision: entry.revision };
  }

  /**
   * Creates the record of the id the name points at: ours, or one whose creator is between its
   * two writes (or died there). Whichever of us loses the create replaces it in the next round.
   */
  private async adopt(id: string, input: ScheduleInput, now: number): Promise<StoredSchedule | undefined> {
    const stored: StoredSchedule = {
      ...inputFields(input),
      id,
      name: input.name,
      lastFiredAt: null,
      createdAt: now,
      pending: null,
      deleted: false,
    };
    return (await this.tryCreate(scheduleKey(id), JSON.stringify(stored))) ? stored : undefined;
  }

  private async replace(found: Found, input: ScheduleInput): Promise<StoredSchedule | undefined> {
    const next: StoredSchedule = { ...found.stored, ...inputFields(input) };
    return (await this.cas(next, found.revision)) === undefined ? undefined : next;
  }

  /** The name's schedule is being deleted: the name goes to a new id (the caller loops to create it). */
  private async takeName(key: string, revision: number, id: string, tombstone: Found): Promise<void> {
    if (await this.tryWrite(key, id, revision)) await this.finishDelete(tombstone);
  }

  /**
   * After the tombstone: the name entry goes first, the record last (only once no job is pending),
   * so a name entry without a record always means "being created", never "deleted". Each step is
   * a CAS anyone may repeat: losing one means another process did it, or the name moved on.
   */
  private async finishDelete(tombstone: Found): Promise<void> {
    const key = nameKey(tombstone.stored.name);
    const owner = await this.nameOwner(key);
    if (owner?.id === tombstone.stored.id) await this.tryPurge(key, owner.revision);
    if (tombstone.stored.pending === null)
      await this.tryPurge(scheduleKey(tombstone.stored.id), tombstone.revision);
  }

  // --- KV primitives (a lost compare-and-set answers false or undefined) ------------------------

  private async read(id: string): Promise<Found | undefined> {
    const entry = await this.meta.get(scheduleKey(id));
    if (entry === null || entry.operation !== "PUT") return undefined;
    return { stored: entry.json<StoredSchedule>(), revision: entry.revision };
  }

  /** Every schedule record, tombstones included. */
  private async readAll(): Promise<Found[]> {
    const ids = (await this.scheduleKeys()).map((key) => key.slice(scheduleKey("").length));
    const out: Found[] = [];
    for (let i = 0; i < ids.length; i += READ_BATCH) {
      const batch = await Promise.all(ids.slice(i, i + READ_BATCH).map((id) => this.read(id)));
      for (const found of batch) if (found !== undefined) out.push(found);
    }
    return out;
  }

  /** The keys under `schedule.` (see kv-keys.ts for why not `kv.keys()`). */
  private scheduleKeys(): Promise<string[]> {
    return listKeys(this.meta, scheduleKey("*"));
  }

  private async cas(stored: StoredSchedule, revision: number): Promise<number | undefined> {
    return this.lostRace(this.meta.update(scheduleKey(stored.id), JSON.stringify(stored), revision));
  }

  private async tryCreate(key: string, value: string): Promise<boolean> {
    return (await this.lostRace(this.meta.create(key, value))) !== undefined;
  }

  private async tryWrite(key: string, value: string, revision: number): Promise<boolean> {
    return (await this.lostRace(this.meta.update(key, value, revision))) !== undefined;
  }

  private async tryPurge(key: string, revision: number): Promise<boolean> {
    return (await this.lostRace(this.meta.purge(key, { previousSeq: revision }).then(() => true))) === true;
  }

  private async lostRace<T>(write: Promise<T>): Promise<T | undefined> {
    try {
      return await write;
    } catch (error) {
      if (isRevisionConflict(error)) return undefined;
      throw error;
    }
  }
}
