/**
 * A job as the NATS store keeps it: one KV value per job, read and written whole by
 * compare-and-set. The bytes are `F1` + header length (u32) + JSON header + payload + result, so
 * payloads and results stay raw bytes (no base64) and the header stays readable in `nats kv get`.
 */
import type { ErrorInfo, JobPolicy, JobState, Progress } from "../../core/job.js";
import type { ClaimedJob, JobRecord } from "../store.js";

/** Everything but the two blobs; times are epoch ms on the store's (here: the local) clock. */
export interface JobHeader {
  id: string;
  handler: string;
  queue: string;
  state: JobState;
  priority: number;
  owner: string | null;
  label: string | null;
  group: string | null;
  uniqueKey: string | null;
  serializer: string;
  /** base64 of the SHA-256 cookie hash; null for submitted jobs. */
  cookieHash: string | null;
  attempts: number;
  maxAttempts: number;
  policy: JobPolicy;
  progress: Progress | null;
  launchedAt: number;
  runAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  error: ErrorInfo | null;
  consumed: boolean;
  detached: boolean;
  cancelRequested: boolean;
  cancelDeadline: number | null;
  fence: number;
  workerId: string | null;
  leaseExpiresAt: number | null;
  /** Parents not completed yet; the job is dispatched when this reaches 0. */
  pendingDeps: number;
  /** Jobs that wait on this one (told when it finishes). */
  children: string[];
  /** A waiter in some process wants this job's changes announced. */
  watched: boolean;
  /** When a finished job's kept result (and the job) may be pruned. */
  expiresAt: number | null;
  /** How many times the job was put on the work stream: part of each dispatch's message id. */
  dispatches: number;
}

export interface StoredJob extends JobHeader {
  payload: Uint8Array | null;
  result: Uint8Array | null;
}

const MAGIC = [0x46, 0x31]; // "F1"
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

interface WireHeader extends JobHeader {
  payloadBytes: number; // -1: null
  resultBytes: number;
}

export function encodeJob(job: StoredJob): Uint8Array {
  const { payload, result, ...header } = job;
  const wire: WireHeader = {
    ...header,
    payloadBytes: payload === null ? -1 : payload.byteLength,
    resultBytes: result === null ? -1 : result.byteLength,
  };
  const head = encoder.encode(JSON.stringify(wire));
  const out = new Uint8Array(
    6 + head.byteLength + Math.max(0, wire.payloadBytes) + Math.max(0, wire.resultBytes),
  );
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(2, head.byteLength);
  out.set(head, 6);
  let at = 6 + head.byteLength;
  if (payload !== null) {
    out.set(payload, at);
    at += payload.byteLength;
  }
  if (result !== null) out.set(result, at);
  return out;
}

export function decodeJob(bytes: Uint8Array): StoredJob {
  if (bytes.byteLength < 6 || bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1]) {
    throw new Error("not a Ferry job record");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLength = view.getUint32(2);
  const { payloadBytes, resultBytes, ...header } = JSON.parse(
    decoder.decode(bytes.subarray(6, 6 + headLength)),
  ) as WireHeader;
  let at = 6 + headLength;
  const take = (n: number): Uint8Array | null => {
    if (n < 0) return null;
    // A copy: the message buffer behind `bytes` is reused by the client.
    const part = bytes.slice(at, at + n);
    at += n;
    return part;
  };
  const payload = take(payloadBytes);
  const result = take(resultBytes);
  return { ...header, payload, result };
}

const hashBytes = (hash: string | null): Uint8Array | null =>
  hash === null ? null : new Uint8Array(Buffer.from(hash, "base64"));

export const hashText = (hash: Uint8Array | null): string | null =>
  hash === null ? null : Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString("base64");

export function toJobRecord(job: StoredJob, withResult = true): JobRecord {
  return {
    id: job.id,
    handler: job.handler,
    queue: job.queue,
    state: job.state,
    priority: job.priority,
    owner: job.owner,
    label: job.label,
    group: job.group,
    uniqueKey: job.uniqueKey,
    serializer: job.serializer,
    payload: job.payload,
    cookieHash: hashBytes(job.cookieHash),
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    policy: job.policy,
    progress: job.progress,
    launchedAt: job.launchedAt,
    runAt: job.runAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    result: withResult ? job.result : null,
    error: job.error,
    consumed: job.consumed,
    detached: job.detached,
    cancelRequested: job.cancelRequested,
    fence: job.fence,
    workerId: job.workerId,
    leaseExpiresAt: job.leaseExpiresAt,
  };
}

export function toClaimedJob(job: StoredJob): ClaimedJob {
  return {
    id: job.id,
    handler: job.handler,
    queue: job.queue,
    payload: job.payload ?? new Uint8Array(0),
    serializer: job.serializer,
    attempt: job.attempts,
    maxAttempts: job.maxAttempts,
    policy: job.policy,
    fence: job.fence,
    label: job.label,
    group: job.group,
    launchedAt: job.launchedAt,
    startedAt: job.startedAt ?? job.launchedAt,
    cancelRequested: job.cancelRequested,
  };
}
