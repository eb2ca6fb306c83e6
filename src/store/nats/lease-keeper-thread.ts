/**
 * The NATS lease keeper's thread (lease-keeper.ts): its own connection, with the store's servers,
 * credentials and TLS (connect-options.ts), open from the start, since a stall is when the thread
 * must act, not when it should begin connecting.
 *
 * A renewal is the store's own compare-and-set on the record: read it, and if it is still running
 * under the same fence, write it back with a later `leaseExpiresAt` at the revision read. Only that
 * field of the record's header changes: the rest of the record, blobs included, is copied as it is.
 */
import { workerData } from "node:worker_threads";
import { jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type HeldLeases, type LeaseKeeperData, runLeaseKeeper } from "../lease-book.js";
import { natsConnectOptions } from "./connect-options.js";
import { HEADER_FIELDS } from "./job-codec.js";
import type { NatsStoreConfig } from "./store-url.js";

export interface NatsKeeperData extends LeaseKeeperData {
  readonly config: NatsStoreConfig;
  /** The jobs bucket's name. */
  readonly bucket: string;
}

const data = workerData as NatsKeeperData;
const STATE = HEADER_FIELDS.indexOf("state");
const FENCE = HEADER_FIELDS.indexOf("fence");
const LEASE = HEADER_FIELDS.indexOf("leaseExpiresAt");
/** JetStream's "wrong last sequence": another write came first. */
const WRONG_LAST_SEQUENCE = 10071;
let nc: NatsConnection | undefined;
let kv: KV | undefined;
let connecting = false;

async function bucket(): Promise<KV | undefined> {
  if (kv !== undefined) return kv;
  if (connecting) return undefined;
  connecting = true;
  try {
    const { options } = await natsConnectOptions(data.config);
    nc = await connect({
      ...options,
      name: "ferry-lease-keeper",
      timeout: 5000,
      maxReconnectAttempts: -1,
      noAsyncTraces: true,
    });
    kv = await new Kvm(jetstream(nc)).open(data.bucket);
  } catch {
    if (nc !== undefined) nc.close().catch(() => {});
    nc = undefined;
  } finally {
    connecting = false;
  }
  return kv;
}

type Header = unknown[] | Record<string, unknown>;

/** The record with a later lease, or undefined when it no longer runs under this fence. */
function withLease(bytes: Uint8Array, fence: number, until: number): Uint8Array | undefined {
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0);
  if (magic !== "F1" && magic !== "F2") return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLength = view.getUint32(2);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(6, 6 + headLength))) as Header;
  const get = (name: string, at: number): unknown =>
    Array.isArray(header) ? header[at] : (header as Record<string, unknown>)[name];
  if (get("state", STATE) !== "running" || get("fence", FENCE) !== fence) return undefined;
  const lease = Math.max(until, Number(get("leaseExpiresAt", LEASE) ?? 0));
  if (Array.isArray(header)) header[LEASE] = lease;
  else header.leaseExpiresAt = lease;
  const head = new TextEncoder().encode(JSON.stringify(header));
  const rest = bytes.subarray(6 + headLength);
  const out = new Uint8Array(6 + head.byteLength + rest.byteLength);
  out.set(bytes.subarray(0, 2), 0);
  new DataView(out.buffer).setUint32(2, head.byteLength);
  out.set(head, 6);
  out.set(rest, 6 + head.byteLength);
  return out;
}

function lostRace(error: unknown): boolean {
  const e = error as { code?: unknown; api_error?: { err_code?: unknown } } | null | undefined;
  return e?.code === WRONG_LAST_SEQUENCE || e?.api_error?.err_code === WRONG_LAST_SEQUENCE;
}

async function renew(store: KV, id: string, fence: number, leaseMs: number): Promise<void> {
  for (let race = 0; race < 5; race++) {
    const entry = await store.get(id);
    if (entry === null || entry.operation !== "PUT") return;
    const next = withLease(entry.value, fence, Date.now() + leaseMs);
    if (next === undefined) return;
    try {
      await store.update(id, next, entry.revision);
      return;
    } catch (error) {
      // Lost a race with the main thread or another writer: read again and decide again.
      if (!lostRace(error)) throw error;
    }
  }
}

async function renewLeases(entry: HeldLeases): Promise<boolean> {
  const store = await bucket();
  if (store === undefined) return false;
  const renewed = await Promise.allSettled(
    entry.leases.map(([id, fence]) => renew(store, id, fence, entry.leaseMs)),
  );
  return renewed.every((r) => r.status === "fulfilled");
}

runLeaseKeeper({
  renewLeases,
  closeStore: async () => {
    if (nc !== undefined) await nc.close();
  },
});
void bucket();
