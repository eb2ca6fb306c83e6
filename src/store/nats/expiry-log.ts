/**
 * Which finished jobs' retention ends when, so pruning reads only what is due instead of every
 * record. A finish notes (id, expiresAt) here; the notes are written in batches, one meta KV key
 * per write and second of expiry: `exp.<latest expiry in it, ms>.<origin>.<n>` holding the ids. A
 * pruner lists the keys whose time has come, deletes what each record confirms, and drops the key.
 *
 * A note is a hint, never the truth: the pruner reads each record, and one that is not finished or
 * not due yet is noted again. A note lost with its process (written at most 100 ms after the
 * finish, before a worker's finish answers) leaves a record that the hourly sweep prunes.
 */
import type { KV } from "@nats-io/kv";
import { CoalescedWrite } from "./coalesced-write.js";
import { listKeys } from "./kv-keys.js";

/** Expiries are grouped by second: a job waits at most this long after its retention ends. */
const SLOT_MS = 1_000;
/** How many recent notes are remembered to skip writing the same one twice. */
const RECENT_IDS = 10_000;
/** Ids per key, so one value stays far below NATS's 1 MB message limit. */
const IDS_PER_KEY = 5_000;
/** Milliseconds as 15 digits: the keys of one origin then sort by time. */
const pad = (ms: number): string => String(ms).padStart(15, "0");

export interface DueNote {
  readonly key: string;
  readonly revision: number;
  readonly ids: readonly string[];
}

export class ExpiryLog {
  /** Per second of expiry: the ids, and the latest expiry among them. */
  readonly #pending = new Map<number, { ids: string[]; latest: number }>();
  readonly #flush: CoalescedWrite;
  /** Expiries noted lately, oldest first (a Map keeps insertion order). */
  readonly #recent = new Map<string, number>();
  #written = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly meta: KV,
    private readonly origin: string,
  ) {
    this.#flush = new CoalescedWrite(() => this.writePending());
  }

  /**
   * `again`: note it even if this process noted the same expiry lately (a pruner that found it not
   * yet due, and drops the note it came from).
   */
  note(id: string, expiresAt: number, again = false): void {
    // A finished record is often written again (watched, consumed) with the same expiry.
    if (!again && this.#recent.get(id) === expiresAt) return;
    this.#recent.delete(id);
    this.#recent.set(id, expiresAt);
    if (this.#recent.size > RECENT_IDS) this.#recent.delete(this.#recent.keys().next().value as string);
    const slot = Math.ceil(expiresAt / SLOT_MS);
    const group = this.#pending.get(slot);
    if (group === undefined) this.#pending.set(slot, { ids: [id], latest: expiresAt });
    else {
      group.ids.push(id);
      group.latest = Math.max(group.latest, expiresAt);
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.flush().catch(() => undefined), 100);
      this.#timer.unref();
    }
  }

  /** Writes every note taken so far. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#pending.size === 0 ? this.#flush.idle().then(() => undefined) : this.#flush.run();
  }

  /** Notes whose time has come by `now`, oldest first. */
  async due(now: number): Promise<DueNote[]> {
    const keys = (await listKeys(this.meta, "exp.*.*.*"))
      .filter((key) => Number(key.split(".")[1]) <= now)
      .sort();
    const out: DueNote[] = [];
    for (const key of keys) {
      const entry = await this.meta.get(key);
      if (entry?.operation !== "PUT") continue;
      out.push({ key, revision: entry.revision, ids: entry.json<string[]>() });
    }
    return out;
  }

  /** A due note fully handled: its key goes (unless another pruner already took it). */
  async drop(note: DueNote): Promise<void> {
    await this.meta.purge(note.key, { previousSeq: note.revision }).catch(() => undefined);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  private async writePending(): Promise<void> {
    const batch = [...this.#pending.entries()];
    this.#pending.clear();
    try {
      await Promise.all(
        batch.flatMap(([, { ids, latest }]) => {
          const writes: Promise<unknown>[] = [];
          for (let i = 0; i < ids.length; i += IDS_PER_KEY) {
            const key = `exp.${pad(latest)}.${this.origin}.${this.#written++}`;
            writes.push(this.meta.put(key, JSON.stringify(ids.slice(i, i + IDS_PER_KEY))));
          }
          return writes;
        }),
      );
    } catch (error) {
      // Kept for the next try: a note is cheap to write twice, costly to lose.
      for (const [slot, group] of batch) {
        const now = this.#pending.get(slot);
        this.#pending.set(
          slot,
          now === undefined
            ? group
            : { ids: [...group.ids, ...now.ids], latest: Math.max(group.latest, now.latest) },
        );
      }
      throw error;
    }
  }
}
