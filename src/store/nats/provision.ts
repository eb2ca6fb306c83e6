/**
 * Creates the store's streams and KV buckets, or opens them when they exist, and checks that what
 * the server holds has the settings asked for. Safe when several processes start at once: a
 * create that loses the race opens what the winner made, and the same check applies.
 *
 * Checking the server's answer matters because a server silently drops settings it does not
 * know (2.9 takes `allow_msg_ttl` and answers without it), and because opening a KV bucket that
 * exists keeps its old settings without a word.
 */
import {
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import type { KV, Kvm, KvOptions } from "@nats-io/kv";
import { nanos } from "@nats-io/transport-node";
import { ErrorCode, FerryError } from "../../core/errors.js";

export type StreamSettings = Partial<StreamConfig> & { readonly name: string };

/** The KV settings Ferry uses, all of which are checked on the bucket the server holds. */
export type KvSettings = Partial<
  Pick<
    KvOptions,
    "history" | "replicas" | "storage" | "ttl" | "markerTTL" | "maxValueSize" | "max_bytes" | "description"
  >
>;

/** JSStreamNameExistErr: a stream of that name exists with another configuration. */
const STREAM_NAME_IN_USE = 10058;

export async function ensureStream(jsm: JetStreamManager, settings: StreamSettings): Promise<StreamInfo> {
  const what = `stream ${settings.name}`;
  let info: StreamInfo;
  try {
    // The same configuration again is accepted as is: two processes creating it both succeed.
    info = await jsm.streams.add({ ...settings });
  } catch (error) {
    if (!isNameInUse(error)) throw unavailable(`cannot create the NATS ${what}: ${messageOf(error)}`, error);
    info = await jsm.streams.info(settings.name).catch((cause: unknown) => {
      throw unavailable(`cannot read the NATS ${what}: ${messageOf(cause)}`, cause);
    });
  }
  checkSettings(what, settings, info.config);
  return info;
}

export async function ensureKv(kvm: Kvm, name: string, settings: KvSettings): Promise<KV> {
  const what = `KV bucket ${name}`;
  let kv: KV;
  try {
    // A copy: the client writes into the options object it is given.
    kv = await kvm.create(name, { ...settings });
  } catch (error) {
    if (!isNameInUse(error)) throw unavailable(`cannot create the NATS ${what}: ${messageOf(error)}`, error);
    kv = await kvm.open(name);
  }
  const status = await kv.status().catch((cause: unknown) => {
    throw unavailable(`cannot read the NATS ${what}: ${messageOf(cause)}`, cause);
  });
  checkSettings(what, kvStreamSettings(settings), status.streamInfo.config);
  return kv;
}

/** The KV settings in the backing stream's terms (what the server echoes). */
function kvStreamSettings(settings: KvSettings): Partial<StreamConfig> {
  const out: Partial<StreamConfig> = { retention: RetentionPolicy.Limits };
  if (settings.history !== undefined) out.max_msgs_per_subject = settings.history;
  if (settings.replicas !== undefined) out.num_replicas = settings.replicas;
  if (settings.storage !== undefined) out.storage = settings.storage;
  if (settings.ttl !== undefined) out.max_age = nanos(settings.ttl);
  if (settings.markerTTL !== undefined) {
    out.allow_msg_ttl = true;
    out.subject_delete_marker_ttl = nanos(settings.markerTTL);
  }
  if (settings.maxValueSize !== undefined) out.max_msg_size = settings.maxValueSize;
  if (settings.max_bytes !== undefined) out.max_bytes = settings.max_bytes;
  if (settings.description !== undefined) out.description = settings.description;
  return out;
}

function isNameInUse(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE;
}

/**
 * Every setting asked for must be what the server holds. Retention, storage and replicas come
 * first in the message: they are what a store's guarantees rest on, and none can be changed later.
 */
function checkSettings(what: string, asked: Partial<StreamConfig>, held: Partial<StreamConfig>): void {
  const differ: string[] = [];
  const dropped: string[] = [];
  const askedRecord = asked as Record<string, unknown>;
  const heldRecord = held as Record<string, unknown>;
  const keys = Object.keys(askedRecord).sort((a, b) => rank(a) - rank(b));
  for (const key of keys) {
    const want = askedRecord[key];
    if (want === undefined || key === "name") continue;
    const have = heldRecord[key];
    if (have === undefined) {
      // Go omits false, 0 and empty values from its answer: asking for one is asking for nothing.
      if (!isZero(want)) dropped.push(key);
    } else if (!sameSetting(want, have)) {
      differ.push(`${key} is ${show(have)}, not ${show(want)}`);
    }
  }
  const problems: string[] = [];
  if (differ.length > 0) {
    problems.push(`${differ.join("; ")} (use another ?prefix=, or delete it if what it holds can go)`);
  }
  if (dropped.length > 0) {
    problems.push(`this server does not keep ${dropped.join(", ")} (a newer nats-server is needed)`);
  }
  if (problems.length > 0) {
    throw unavailable(
      `the NATS ${what} does not have the settings Ferry needs: ${problems.join("; ")}`,
      undefined,
      { differ, dropped },
    );
  }
}

const FIRST = ["retention", "storage", "num_replicas"];
const rank = (key: string) => (FIRST.includes(key) ? FIRST.indexOf(key) : FIRST.length);

/** Arrays of plain values in any order; objects by the keys asked for (the server adds defaults). */
function sameSetting(want: unknown, have: unknown): boolean {
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || want.length !== have.length) return false;
    const sorted = (list: unknown[]) => list.map((item) => JSON.stringify(item)).sort();
    const a = sorted(want);
    const b = sorted(have);
    return a.every((item, i) => item === b[i]);
  }
  if (want !== null && typeof want === "object") {
    if (have === null || typeof have !== "object") return false;
    const held = have as Record<string, unknown>;
    return Object.entries(want).every(
      ([key, value]) => value === undefined || (key in held ? sameSetting(value, held[key]) : isZero(value)),
    );
  }
  return want === have;
}

const isZero = (value: unknown): boolean =>
  value === false ||
  value === 0 ||
  value === "" ||
  value === null ||
  (Array.isArray(value) && value.length === 0) ||
  (typeof value === "object" && value !== null && Object.values(value).every(isZero));

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
};

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

function unavailable(message: string, cause?: unknown, details?: Record<string, unknown>): FerryError {
  return new FerryError(ErrorCode.StoreUnavailable, message, {
    ...(cause === undefined ? {} : { cause }),
    ...(details === undefined ? {} : { details }),
  });
}
