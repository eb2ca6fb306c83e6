import { createRequire } from "node:module";
import { LeaseThread, leaseKeeperSource } from "../lease-thread.js";
import { HEADER_FIELDS } from "./job-codec.js";
import type { NatsStoreConfig } from "./store-url.js";

/**
 * A thread with its own NATS connection that keeps a heartbeating worker's leases alive while the
 * event loop is stalled (a synchronous handler starves the heartbeat timer, and the job would be
 * rescued and run twice). Same protocol and rules as the PostgreSQL keeper (postgres/lease-keeper.ts):
 * it renews only when a heartbeat is clearly late, and for at most `until`.
 *
 * A renewal is the store's own compare-and-set on the record: read it, and if it is still running
 * under the same fence, write it back with a later `leaseExpiresAt` at the revision read. The thread
 * runs plain JavaScript (no TypeScript loader in a worker), so it patches the record's header in
 * place rather than importing the codec: the field positions come from HEADER_FIELDS.
 *
 * It writes only while the event loop is really stalled (the main thread's beat in shared memory is
 * old), not when a heartbeat is merely late on a busy machine: on nats-server before 2.11 a
 * replicated KV can accept two compare-and-sets at one revision (nats-server #6194), so a renewal
 * racing the main thread's finish could re-open a completed job. A stalled loop sends nothing.
 */
const STORE_PART = `
const { readFileSync } = require("node:fs");
const nats = require(workerData.transport);
const { jetstream } = require(workerData.jetstream);
const { Kvm } = require(workerData.kv);
const STATE = workerData.fields.indexOf("state");
const FENCE = workerData.fields.indexOf("fence");
const LEASE = workerData.fields.indexOf("leaseExpiresAt");
let nc;
let kv;
let connecting = false;

function connectOptions(config) {
  const options = { servers: config.servers, name: "ferry-lease-keeper", timeout: 5000, maxReconnectAttempts: -1, noAsyncTraces: true };
  const auth = config.auth;
  if (auth.kind === "userpass") { options.user = auth.user; options.pass = auth.pass; }
  else if (auth.kind === "token") options.token = auth.token;
  else if (auth.kind === "creds") options.authenticator = nats.credsAuthenticator(readFileSync(auth.file));
  else if (auth.kind === "nkey") {
    const seed = /S[A-Z][A-Z2-7]{56}/.exec(readFileSync(auth.seedFile, "utf8"));
    if (seed !== null) options.authenticator = nats.nkeyAuthenticator(new TextEncoder().encode(seed[0]));
  }
  if (config.tls !== undefined) {
    const tls = {};
    for (const key of ["caFile", "certFile", "keyFile"]) if (config.tls[key] !== undefined) tls[key] = config.tls[key];
    options.tls = tls;
  }
  return options;
}

async function bucket() {
  if (kv !== undefined) return kv;
  if (connecting) return undefined;
  connecting = true;
  try {
    nc = await nats.connect(connectOptions(workerData.config));
    kv = await new Kvm(jetstream(nc)).open(workerData.bucket);
  } catch {
    if (nc !== undefined) nc.close().catch(() => {});
    nc = undefined;
  } finally {
    connecting = false;
  }
  return kv;
}

// The record with a later lease, or undefined when it no longer runs under this fence.
function withLease(bytes, fence, until) {
  const magic = String.fromCharCode(bytes[0], bytes[1]);
  if (magic !== "F1" && magic !== "F2") return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLength = view.getUint32(2);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(6, 6 + headLength)));
  const get = (name, at) => (magic === "F2" ? header[at] : header[name]);
  if (get("state", STATE) !== "running" || get("fence", FENCE) !== fence) return undefined;
  const lease = Math.max(until, get("leaseExpiresAt", LEASE) ?? 0);
  if (magic === "F2") header[LEASE] = lease; else header.leaseExpiresAt = lease;
  const head = new TextEncoder().encode(JSON.stringify(header));
  const rest = bytes.subarray(6 + headLength);
  const out = new Uint8Array(6 + head.byteLength + rest.byteLength);
  out.set(bytes.subarray(0, 2), 0);
  new DataView(out.buffer).setUint32(2, head.byteLength);
  out.set(head, 6);
  out.set(rest, 6 + head.byteLength);
  return out;
}

async function renew(store, id, fence, leaseMs) {
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
      if (error?.code !== 10071 && error?.api_error?.err_code !== 10071) throw error;
    }
  }
}

async function renewLeases(entry) {
  const store = await bucket();
  if (store === undefined) return false;
  const renewed = await Promise.allSettled(entry.leases.map(([id, fence]) => renew(store, id, fence, entry.leaseMs)));
  return renewed.every((r) => r.status === "fulfilled");
}

async function closeStore() {
  if (nc !== undefined) await nc.close();
}

// Connected from the start: a stall is when the thread must act, not when it should begin connecting.
void bucket();
`;

export class NatsLeaseKeeper extends LeaseThread {
  constructor(config: NatsStoreConfig, jobsBucket: string) {
    const require = createRequire(import.meta.url);
    super(
      leaseKeeperSource(STORE_PART),
      {
        config,
        bucket: jobsBucket,
        fields: [...HEADER_FIELDS],
        transport: require.resolve("@nats-io/transport-node"),
        jetstream: require.resolve("@nats-io/jetstream"),
        kv: require.resolve("@nats-io/kv"),
        tickMs: 200,
      },
      { loopBeatMs: 50 },
    );
  }
}
