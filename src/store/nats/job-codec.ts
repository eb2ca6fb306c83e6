/**
 * A job as the NATS store keeps it: one KV value per job, read and written whole by
 * compare-and-set. The bytes are `F2` + header length (u32) + header + payload + result, so
 * payloads and results stay raw bytes (no base64). The header is a JSON array of the JobHeader
 * fields in HEADER_FIELDS order, then the two blob lengths: still readable in `nats kv get`, and
 * less than half the bytes of an object with its keys (every claim and finish sends the whole
 * record, and on loopback the socket write costs by the byte). `F1` (an object) is still read.
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

const MAGIC_OBJECT = [0x46, 0x31]; // "F1": the header as an object (written before the array)
const MAGIC = [0x46, 0x32]; // "F2": the header as an array
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The header's fields in their place in the array. Append only: records in a bucket outlive a release. */
export const HEADER_FIELDS = [
  "id",
  "handler",
  "queue",
  "state",
  "priority",
  "owner",
  "label",
  "group",
  "uniqueKey",
  "serializer",
  "cookieHash",
  "attempts",
  "maxAttempts",
  "policy",
  "progress",
  "launchedAt",
  "runAt",
  "startedAt",
  "finishedAt",
  "error",
  "consumed",
  "detached",
  "cancelRequested",
  "cancelDeadline",
  "fence",
  "workerId",
  "leaseExpiresAt",
  "pendingDeps",
  "children",
  "watched",
  "expiresAt",
  "dispatches",
] as const satisfies readonly (keyof JobHeader)[];

/** Every field of a StoredJob, in HEADER_FIELDS order, then the blobs: the shape decoded records take. */
const SHAPE: Readonly<Record<string, unknown>> = JSON.parse(
  JSON.stringify(Object.fromEntries([...HEADER_FIELDS, "payload", "result"].map((field) => [field, null]))),
);

export function encodeJob(job: StoredJob): Uint8Array {
  const { payload, result } = job;
  const values: unknown[] = [];
  for (const field of HEADER_FIELDS) values.push(job[field]);
  const payloadBytes = payload === null ? -1 : payload.byteLength;
  const resultBytes = result === null ? -1 : result.byteLength;
  values.push(payloadBytes, resultBytes);
  const head = Buffer.from(JSON.stringify(values));
  const out = new Uint8Array(6 + head.byteLength + Math.max(0, payloadBytes) + Math.max(0, resultBytes));
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
  const isArray = bytes[0] === MAGIC[0] && bytes[1] === MAGIC[1];
  const isObject = bytes[0] === MAGIC_OBJECT[0] && bytes[1] === MAGIC_OBJECT[1];
  if (bytes.byteLength < 6 || !(isArray || isObject)) throw new Error("not a Ferry job record");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headLength = view.getUint32(2);
  const parsed = JSON.parse(decoder.decode(bytes.subarray(6, 6 + headLength))) as unknown;
  const values = isArray
    ? (parsed as unknown[])
    : [...HEADER_FIELDS, "payloadBytes", "resultBytes"].map(
        (field) => (parsed as Record<string, unknown>)[field],
      );
  // Copied from SHAPE (made by JSON.parse, which gives a fast in-object shape), then filled. Built up key by
  // key it would not, and every `{ ...job }` in transitions.ts cost 6.5 µs instead of 0.05.
  const job: Record<string, unknown> = { ...SHAPE };
  for (const [i, field] of HEADER_FIELDS.entries()) job[field] = values[i];
  const payloadBytes = values[HEADER_FIELDS.length];
  const resultBytes = values[HEADER_FIELDS.length + 1];
  const payloadAt = 6 + headLength;
  const resultAt = payloadAt + Math.max(0, Number(payloadBytes));
  // Copies: the message buffer behind `bytes` is reused by the client.
  job.payload = blobAt(bytes, payloadAt, payloadBytes);
  job.result = blobAt(bytes, resultAt, resultBytes);
  return job as unknown as StoredJob;
}

const blobAt = (bytes: Uint8Array, at: number, length: unknown): Uint8Array | null =>
  typeof length === "number" && length >= 0 ? bytes.slice(at, at + length) : null;

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
