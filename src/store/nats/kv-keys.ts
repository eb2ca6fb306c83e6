import { Bucket, type KV } from "@nats-io/kv";

/**
 * The keys of a KV bucket matching `filter` (a subject pattern such as `worker.*`), from one
 * stream-info request: a server-side snapshot of the bucket's subjects. Deleted keys are listed by
 * their marker and read as absent.
 *
 * Not `kv.keys()`: its watch ends only when no message is pending, so on 2.9 it runs on (measured:
 * 13 listings in 60 hung) while a listed key keeps being written, as job records and heartbeats are.
 */
export async function listKeys(kv: KV, filter: string): Promise<string[]> {
  // The stream behind the bucket: the client's own KV, not a wrapper.
  if (!(kv instanceof Bucket)) throw new TypeError("listKeys needs a KV bucket from Kvm");
  const info = await kv.jsm.streams.info(kv.stream, { subjects_filter: kv.fullKeyName(filter) });
  return Object.keys(info.state.subjects ?? {}).map((subject) => kv.decodeKey(subject.slice(kv.prefixLen)));
}

/**
 * Removes every message of one key, leaving no delete marker (`kv.purge` leaves one per key for
 * good, so a bucket of pruned jobs would keep a marker per job, and key listings would keep
 * listing them). Not a compare-and-set: callers decide with one first where it matters.
 */
export async function dropKey(kv: KV, key: string): Promise<void> {
  if (!(kv instanceof Bucket)) throw new TypeError("dropKey needs a KV bucket from Kvm");
  await kv.jsm.streams.purge(kv.stream, { filter: kv.fullKeyName(key) });
}
