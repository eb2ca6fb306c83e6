/**
 * Job records in the `P_jobs` KV bucket, written only by compare-and-set: `create` when absent,
 * `update` at the revision last read. A lost race re-reads and decides again from the record.
 */
import type { KV } from "@nats-io/kv";
import { decodeJob, encodeJob, type StoredJob } from "./job-codec.js";
import { dropKey, listKeys } from "./kv-keys.js";

export interface Versioned {
  readonly job: StoredJob;
  readonly revision: number;
}

/** JetStream's "wrong last sequence": the compare-and-set lost (the key moved on, or exists). */
export const isRevisionConflict = (error: unknown): boolean =>
  (error as { code?: unknown } | null)?.code === 10071 ||
  (error as { api_error?: { err_code?: unknown } } | null)?.api_error?.err_code === 10071;

/** Retries of one read-modify-write before giving up (each lost race means another writer won). */
const MAX_RACES = 50;

export class JobRepo {
  /** The last write sent per record, while one is out (see `serial`). */
  readonly #writing = new Map<string, Promise<unknown>>();

  /**
   * `writeRecord`: the compare-and-set itself (0: create), through the store's light requests.
   * `written`: told of every record this repo created or wrote (the store notes expiries).
   */
  constructor(
    private readonly kv: KV,
    private readonly writeRecord: (id: string, record: Uint8Array, revision: number) => Promise<number>,
    private readonly written: (job: StoredJob) => void = () => {},
  ) {}

  async read(id: string): Promise<Versioned | undefined> {
    const entry = await this.kv.get(id);
    if (entry === null || entry.operation !== "PUT") return undefined;
    return { job: decodeJob(entry.value), revision: entry.revision };
  }

  async readMany(ids: readonly string[]): Promise<Versioned[]> {
    const found = await Promise.all(ids.map((id) => this.read(id)));
    return found.filter((v): v is Versioned => v !== undefined);
  }

  /** Creates the record; false when one with this id exists. */
  async create(job: StoredJob): Promise<number | undefined> {
    try {
      const record = encodeJob(job);
      const revision = await this.serial(job.id, async () => {
        try {
          return await this.writeRecord(job.id, record, 0);
        } catch (error) {
          // The key holds something: a record, or the marker of a deleted one (create takes that over).
          if (isRevisionConflict(error)) return await this.kv.create(job.id, record);
          throw error;
        }
      });
      this.written(job);
      return revision;
    } catch (error) {
      if (isRevisionConflict(error)) return undefined;
      throw error;
    }
  }

  /** Writes at `revision`; undefined when another writer got there first. */
  async write(job: StoredJob, revision: number): Promise<number | undefined> {
    try {
      const record = encodeJob(job);
      const next = await this.serial(job.id, () => this.writeRecord(job.id, record, revision));
      this.written(job);
      return next;
    } catch (error) {
      if (isRevisionConflict(error)) return undefined;
      throw error;
    }
  }

  /**
   * Read-modify-write until it lands: `change` answers the new record, or undefined to leave it
   * as it is. Starts from `known` when the caller has a recent read (saves a round trip).
   */
  async change(
    id: string,
    change: (job: StoredJob) => StoredJob | undefined,
    known?: Versioned,
  ): Promise<{ before: StoredJob; after: Versioned } | undefined> {
    let current = known ?? (await this.read(id));
    let fresh = known === undefined;
    for (let race = 0; race < MAX_RACES && current !== undefined; race++) {
      const next = change(current.job);
      if (next === undefined) {
        // "Nothing to do" counts only on a fresh read: a remembered copy may be out of date.
        if (fresh) return undefined;
        current = await this.read(id);
        fresh = true;
        continue;
      }
      const revision = await this.write(next, current.revision);
      if (revision !== undefined) return { before: current.job, after: { job: next, revision } };
      current = await this.read(id);
      fresh = true;
    }
    if (current === undefined) return undefined;
    throw new Error(`job ${id}: too many concurrent writers`);
  }

  /**
   * Removes the record if it is still at `revision`: a compare-and-set purge, whose marker is then
   * dropped too (a marker per pruned job would stay for good). A writer that read the record
   * before still fails: the key's last sequence is no longer its revision.
   */
  async remove(id: string, revision: number): Promise<boolean> {
    try {
      await this.serial(id, () => this.kv.purge(id, { previousSeq: revision }));
    } catch (error) {
      if (isRevisionConflict(error)) return false;
      throw error;
    }
    await dropKey(this.kv, id).catch(() => undefined);
    return true;
  }

  /**
   * One write per record at a time from this process. A replicated KV on nats-server before 2.11
   * can accept two compare-and-sets sent at the same revision when both are in flight at once
   * (nats-server #6194): a heartbeat overwrote a completion in the three-node test. Sent one after
   * the other, the second is checked against the first's result. Writers in other processes are
   * not covered: run a cluster on 2.11+ (docs/stores.md).
   */
  private serial<T>(id: string, write: () => Promise<T>): Promise<T> {
    const before = this.#writing.get(id);
    // Nothing out for this record (the common case): sent now, not a microtask later.
    const mine = before === undefined ? write() : before.then(write, write);
    const settled = mine.then(
      () => undefined,
      () => undefined,
    );
    this.#writing.set(id, settled);
    void settled.then(() => {
      if (this.#writing.get(id) === settled) this.#writing.delete(id);
    });
    return mine;
  }

  /** Every record. A scan: only for what has no index yet (see docs/stores.md). */
  async *scan(): AsyncGenerator<Versioned> {
    const keys = await listKeys(this.kv, ">");
    for (let i = 0; i < keys.length; i += 256) {
      for (const found of await this.readMany(keys.slice(i, i + 256))) yield found;
    }
  }
}
