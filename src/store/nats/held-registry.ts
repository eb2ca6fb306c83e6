/**
 * Which running jobs each process holds, so a rescuer reads those records instead of every one.
 * Each store writes `held.<origin>` in meta KV = { at, ids } before its claim answers (one write
 * per claim round, shared by concurrent rounds) and at each heartbeat; finished ids drop out at the
 * next write. A rescuer reads every `held.*` key and checks those jobs' records (the record decides:
 * an id listed after its job finished is one wasted read).
 *
 * What a crash leaves out (a record claimed, the process gone before this write) is never run by
 * it either: its dispatch message is redelivered after AckWait and the claim path rescues the
 * job then; the hourly sweep is the last resort.
 */
import type { KV } from "@nats-io/kv";
import { CoalescedWrite } from "./coalesced-write.js";
import { listKeys } from "./kv-keys.js";

export interface HeldEntry {
  readonly key: string;
  readonly revision: number;
  readonly origin: string;
  /** When its process last wrote it (epoch ms). */
  readonly at: number;
  readonly ids: readonly string[];
}

export class HeldRegistry {
  readonly #write: CoalescedWrite;

  constructor(
    private readonly meta: KV,
    private readonly origin: string,
    heldIds: () => readonly string[],
  ) {
    this.#write = new CoalescedWrite(() =>
      this.meta.put(`held.${origin}`, JSON.stringify({ at: Date.now(), ids: heldIds() })),
    );
  }

  /** Writes this process's current list. */
  publish(): Promise<void> {
    return this.#write.run();
  }

  async list(): Promise<HeldEntry[]> {
    const out: HeldEntry[] = [];
    for (const key of await listKeys(this.meta, "held.*")) {
      const entry = await this.meta.get(key);
      if (entry?.operation !== "PUT") continue;
      const { at, ids } = entry.json<{ at: number; ids: string[] }>();
      out.push({ key, revision: entry.revision, origin: key.slice("held.".length), at, ids });
    }
    return out;
  }

  /** Drops another process's entry once it has been silent for long (unless it wrote meanwhile). */
  async forget(entry: HeldEntry): Promise<void> {
    await this.meta.purge(entry.key, { previousSeq: entry.revision }).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.#write.idle();
    await this.meta.purge(`held.${this.origin}`).catch(() => undefined);
  }
}
