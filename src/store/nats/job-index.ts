/**
 * The listing index: one key per kept job in the `P_index` bucket, `<queue>.<owner token>.<id>`,
 * written beside the job's record at launch and removed when the job is pruned or purged. Lists
 * and bulk controls find their candidates from the keys (one stream-info request, paged by the
 * client, reading no record), in id order, which is launch order (UUIDv7), and then read only the
 * records they need: a page of `list` reads about one page of records, not the history.
 *
 * State, handler and label change or are free text: they are checked on the records.
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import type { JobFilter } from "../store.js";
import { dropKey, listKeys } from "./kv-keys.js";

/** Owners are free text: the key holds a hash; `_` for jobs without an owner. */
const NO_OWNER = "_";
const ownerToken = (owner: string | null): string =>
  owner === null ? NO_OWNER : createHash("sha256").update(owner).digest("hex").slice(0, 32);

interface Indexed {
  readonly id: string;
  readonly queue: string;
  readonly owner: string | null;
}

export class JobIndex {
  constructor(private readonly kv: KV) {}

  add(job: Indexed): Promise<unknown> {
    return this.kv.put(this.key(job), "1");
  }

  /** Gone with its job. A failure leaves a key whose record is missing: listings skip it. */
  async remove(job: Indexed): Promise<void> {
    await dropKey(this.kv, this.key(job)).catch(() => undefined);
  }

  /** The ids that may match `filter` (queue and owner checked here), after `afterId`, ascending. */
  async ids(filter: JobFilter, afterId?: string): Promise<string[]> {
    const queue = filter.queue ?? "*";
    const owner = filter.owner === undefined ? "*" : ownerToken(filter.owner);
    const keys = await listKeys(this.kv, `${queue}.${owner}.*`);
    const ids = keys.map((key) => key.slice(key.lastIndexOf(".") + 1));
    return (afterId === undefined ? ids : ids.filter((id) => id > afterId)).sort();
  }

  private key(job: Indexed): string {
    return `${job.queue}.${ownerToken(job.owner)}.${job.id}`;
  }
}
